"""A small live stack for ops tests: qualmon fed with simulated events, and a real Prometheus.

The service runs with hourly buckets (the ``service_factory`` default), so four simulated days
close ~90 buckets per slice — past the detectors' warm-up — in a few hundred kilobytes of
events. One hotline outage is in the data, so the anomaly series are not empty, and a few bad
Kafka records make the dead-letter series move.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import httpx
import yaml
from kafka import KafkaProducer

from monitor.broker import free_port
from monitor.simulator import SimConfig, generate
from tests.conftest import Service, wait_until
from tests.factories import at, complaint, event, hotline_hours

SIM = SimConfig(
    seed=11, branches=2, product_lines=2, channels=2, days=4, start=date(2026, 3, 2),
    scenarios=("hotline-outage",),
)  # fmt: skip


def stream() -> list[dict]:
    """The simulated days with a hotline outage in org 3201 (TELE) at hour 74, in time order.

    The outage is added by hand because the simulator's own incidents need weeks of history to
    stand out; this one follows 30 normal hours (past the detectors' warm-up) of 60 calls each.
    """
    hours = [list(hour) for hour in generate(SIM)]
    # No 3201 event after the outage hour, so its last score stays the outage's on /metrics.
    for h in range(44, 75):
        answered = 20 if h == 74 else 57
        extra = hotline_hours(range(h, h + 1), 60, answered, "ops", org_path="00/32/3201",
                              channel="TELE")  # fmt: skip
        hours[h] = sorted(hours[h] + extra, key=lambda e: datetime.fromisoformat(e["event_time"]))
    # Complaints received on day one and closed on day three, so the handling panels have data
    # (the simulator closes its complaints after more days than this feed has).
    for i in range(12):
        where = {"org_path": "00/32/3201", "channel": "TELE"}
        hours[2].append(complaint(f"ops-q{i}", at(2 + i / 20), **where))
        closed = event("complaint.closed", f"ops-qc{i}", at(50 + i / 20),
                       {"complaint_id": f"c-ops-q{i}", "received_at": at(2 + i / 20),
                        "outcome": "UPHELD"}, **where)  # fmt: skip
        hours[50].append(closed)
    for h in (2, 50):
        hours[h].sort(key=lambda e: datetime.fromisoformat(e["event_time"]))
    return [e for hour in hours for e in hour]


def feed(service: Service, bootstrap: str, topic: str) -> int:
    """Post the stream in batches, add three dead letters; returns the events posted."""
    events = stream()
    for i in range(0, len(events), 1000):
        response = service.client.post("/v1/events", json=events[i : i + 1000])
        assert response.status_code == 202, response.text
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for bad in (b"not json", b'{"no": "event"}', b"[1, 2]"):
        producer.send(topic, key=b"4401", value=bad)
    producer.flush()
    producer.close()
    wait_until(
        lambda: (
            service.metric("qualmon_events_total") >= len(events) + 3
            and service.metric("qualmon_anomalies_total") > 0
            and "qualmon_consumer_lag_records{" in service.client.get("/metrics").text
        ),
        60,
        "the worker to count every event and find the outage",
    )
    return len(events)


@contextmanager
def prometheus(
    scrape_port: int | list[int], alertmanager_port: int | None = None
) -> Iterator[httpx.Client]:
    """A real Prometheus on a free loopback port scraping ``127.0.0.1:scrape_port`` (or each of
    several ports) every second, with qualmon's rules loaded (and sending alerts to a local
    Alertmanager when given one); stopped (by its pid) on exit."""
    ports = [scrape_port] if isinstance(scrape_port, int) else scrape_port
    rules = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules"
    with tempfile.TemporaryDirectory(prefix="qualmon-prom-") as tmp:
        work = Path(tmp)
        shutil.copytree(rules, work / "rules")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules/*.yml"],
            "scrape_configs": [
                {"job_name": "qualmon-worker",
                 "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in ports]}]}
            ],
        }  # fmt: skip
        if alertmanager_port is not None:
            targets = [f"127.0.0.1:{alertmanager_port}"]
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": targets}]}]}
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        command = [
            "prometheus", f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            # An alert evaluated before the Alertmanager is discovered is dropped; resend it
            # within seconds rather than the default minute.
            "--rules.alert.resend-delay=1s",
        ]  # fmt: skip
        with running(command, work / "log", port) as client:
            yield client


@contextmanager
def running(command: list[str], log_path: Path, port: int) -> Iterator[httpx.Client]:
    """Start a Prometheus-style server (``/-/ready``) on ``port``; stop it by its pid on exit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        wait_until(lambda: _ready(client, process, log_path), 30, f"{command[0]} to be ready")
        yield client
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _ready(client: httpx.Client, process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"{process.args[0]} exited:\n{log.read_text()[-3000:]}")
    try:
        return client.get("/-/ready").status_code == 200
    except httpx.HTTPError:
        return False


def query(client: httpx.Client, expr: str) -> list[dict]:
    """Instant query; raises naming the expression when Prometheus refuses it."""
    response = client.get("/api/v1/query", params={"query": expr})
    body = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"Prometheus refused {expr!r}: {body.get('error')}")
    result: list[dict] = body["data"]["result"]
    return result
