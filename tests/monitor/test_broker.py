"""``qualmon run`` on embedded defaults starts its own broker and leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.broker import EmbeddedBroker, free_port, wait_for_port
from tests.conftest import wait_until

pytestmark = pytest.mark.broker


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(")")[-1].split()[0] != "Z"  # a zombie is dead, only not yet reaped


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _is_broker(pid: int) -> bool:
    return "tansu" in Path(f"/proc/{pid}/cmdline").read_text()


def test_embedded_broker_starts_and_stops() -> None:
    broker = EmbeddedBroker().start()
    assert wait_for_port(broker.host, broker.port, 1)
    pid = broker.process.pid if broker.process else 0
    broker.stop()
    assert not _alive(pid)


@contextlib.contextmanager
def qualmon_run(tmp_path: Path, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    """``qualmon run`` on embedded defaults in a session of its own, ready; killed if left."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")}
    environ |= {"QUALMON_HTTP_PORT": str(port), "QUALMON_DATA_DIR": str(tmp_path), **env}
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run"], env=environ,
                                stdout=out, stderr=out, start_new_session=True)  # fmt: skip
    try:
        wait_until(lambda: _ready(port), 60, f"qualmon run to be ready (log: {log})")
        (broker,) = (c for c in _children(proc.pid) if _is_broker(c))
        yield proc, log, broker
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(
    ("stop", "group"),
    # Ctrl-C in a terminal signals the whole foreground process group, broker included unless
    # it runs in a session of its own; it must still outlive the worker's shutdown.
    [(signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGKILL, False)],
    ids=["sigterm", "ctrl-c", "sigkill"],
)
def test_run_stops_the_broker_it_started(tmp_path: Path, stop: signal.Signals, group: bool) -> None:
    with qualmon_run(tmp_path) as (proc, log, broker):
        if group:
            os.killpg(proc.pid, stop)  # its own session: the group is qualmon's alone
        else:
            proc.send_signal(stop)
        status = proc.wait(30)
        if stop != signal.SIGKILL:
            assert status == 0, log.read_text()[-3000:]
        wait_until(lambda: not _alive(broker), 15, "the embedded broker to exit")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_run_exits_when_the_broker_died_first(tmp_path: Path) -> None:
    with qualmon_run(tmp_path, QUALMON_SHUTDOWN_TIMEOUT_SECONDS="3") as (proc, log, broker):
        os.kill(broker, signal.SIGKILL)
        proc.send_signal(signal.SIGTERM)
        # Without the shutdown bound Faust waits for ever on Kafka clients that cannot close.
        assert proc.wait(30) == 1
        assert "QUALMON_SHUTDOWN_TIMEOUT_SECONDS" in log.read_text()
