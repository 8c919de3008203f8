"""``qualmon worker``'s own HTTP face: probes and /metrics, in-process and as a real process."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from monitor.api.worker import create_worker_api
from monitor.metrics import Metrics
from streams.app import WorkerStatus
from tests.conftest import wait_until
from tests.factories import at, call


def test_ready_once_the_worker_has_joined_its_group_with_partitions_or_without() -> None:
    registry = CollectorRegistry()
    Metrics(registry).assigned_partitions.set(0)
    status = WorkerStatus()
    with TestClient(create_worker_api(registry, status)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"] == {"worker_joined": False}
        # More workers than partitions: a standby is doing its job, so a rolling update that
        # waits for a new pod's readiness does not stall on it.
        status.joined = True
        assert client.get("/readyz").json() == {
            "status": "ready",
            "checks": {"worker_joined": True},
            "partitions": [],
        }
        status.assigned = {0, 1}
        assert client.get("/readyz").json()["partitions"] == [0, 1]
        assert "qualmon_worker_assigned_partitions 0.0" in client.get("/metrics").text
        assert client.get("/v1/events").status_code == 404  # the API is not part of a worker


@pytest.mark.broker
def test_a_worker_process_serves_its_metrics(service_factory, kafka_settings, tmp_path) -> None:
    # The API (in `qualmon run`) takes the events; a separate `qualmon worker` in another group
    # counts them too and reports them on its own port, as compose and Kubernetes scrape it.
    api = service_factory().start()
    worker = service_factory(QUALMON_APP_ID=f"{kafka_settings.app_id}-w")
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "worker"], env=worker.env, stdout=log, stderr=log
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{worker.port}", timeout=5)
    try:

        def ready() -> bool:
            assert process.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            try:
                return client.get("/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 60, "the worker to join its group")
        events = [call(f"w-{i}", at(1 + i / 10), True) for i in range(5)]
        assert api.client.post("/v1/events", json=events).status_code == 202
        wait_until(
            lambda: 'qualmon_events_total{event_type="call.completed",outcome="accepted"} 5.0'
            in client.get("/metrics").text,
            30, "the worker's /metrics to count the five events",
        )  # fmt: skip
        # Measured on the worker's next timer tick, for the partitions it has read from.
        lag = 'qualmon_consumer_lag_records{partition="'
        wait_until(lambda: lag in client.get("/metrics").text, 10, "the lag of a partition")
    finally:
        client.close()
        process.terminate()
        process.wait(30)
        log.close()
