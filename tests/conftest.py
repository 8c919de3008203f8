"""Shared fixtures: the real embedded broker, and qualmon processes started against it.

Every test that needs Kafka gets its own topic prefix and consumer group on one session broker,
so tests never read each other's data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.broker import EmbeddedBroker, free_port
from monitor.settings import Settings
from monitor.topics import ensure_topics


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
def kafka_settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    """Settings with a fresh topic prefix and group on the session broker; topics created."""
    tag = uuid.uuid4().hex[:10]
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        topic_prefix=f"t{tag}",
        app_id=f"g{tag}",
        data_dir=tmp_path / "data",
        partitions=2,
        request_timeout_seconds=5,
    )
    ensure_topics(broker.bootstrap, settings)
    return settings


def wait_until(
    check: Callable[[], object], timeout: float, what: str, every: float = 0.2
) -> object:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class Service:
    """A ``qualmon run`` (or ``worker``) child process; stopped by its pid."""

    env: dict[str, str]
    log: Path
    port: int
    command: str = "run"  # or "worker", "api"
    process: subprocess.Popen[bytes] | None = None
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def start(self, ready_timeout: float = 60) -> Service:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", self.command],
                env=self.env,
                stdout=out,
                stderr=out,
            )
        wait_until(self._ready, ready_timeout, f"/readyz of qualmon (log: {self.log})")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"qualmon exited early:\n{self.log.read_text()[-4000:]}")
        try:
            return self.client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int:
        proc, self.process = self.process, None
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        text = self.client.get("/metrics").text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total


@pytest.fixture
def service_factory(kafka_settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def make(**overrides: str) -> Service:
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")},
            "QUALMON_KAFKA_BOOTSTRAP": kafka_settings.kafka_bootstrap or "",
            "QUALMON_TOPIC_PREFIX": kafka_settings.topic_prefix,
            "QUALMON_APP_ID": kafka_settings.app_id,
            "QUALMON_DATA_DIR": str(kafka_settings.data_dir),
            "QUALMON_PARTITIONS": str(kafka_settings.partitions),
            "QUALMON_HTTP_PORT": str(port),
            "QUALMON_BUCKET_SECONDS": "3600",
            "QUALMON_ALLOWED_LATENESS_SECONDS": "600",
            "QUALMON_CHECKPOINT_SECONDS": "0.5",
            **overrides,
        }
        service = Service(env, tmp_path / f"qualmon-{len(started)}.log", port)
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()
        service.client.close()


def _postgres_reachable(host: str = "127.0.0.1", port: int = 5432) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty history store: a SQLite file, then a PostgreSQL database made for the test
    and dropped after it (skipped when no server listens on 127.0.0.1:5432)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if not _postgres_reachable():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres, trust auth)")
    import psycopg

    name = f"qualmon_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.fixture
def store(store_url: str) -> Iterator[object]:
    from monitor.store import open_store

    opened = open_store(store_url)
    yield opened
    opened.close()


# Real HTTP receivers and Alertmanager for the alerting and alert-API tests.
from tests.receivers import alertmanager_factory, receiver, receiver_factory  # noqa: E402

__all__ = ["alertmanager_factory", "receiver", "receiver_factory"]
