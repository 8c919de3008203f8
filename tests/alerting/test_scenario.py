"""The simulator's mis-selling wave, end to end through the worker's pipeline and the alert
engine, to a real Alertmanager and a real signed-webhook receiver on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry

from alerting.dispatcher import Dispatcher
from alerting.engine import AlertEngine
from monitor.metrics import Metrics
from monitor.settings import Settings
from monitor.simulator import SimConfig, generate
from monitor.store import Store, open_store
from tests.conftest import wait_until
from tests.receivers import Alertmanager, Receiver
from tests.streams.stages import Stages

SECRET = "test-secret-0123456789"
#: 6 branches × 2 lines × 2 channels for four weeks: ~37,000 events, a few seconds to replay.
#: The wave hits org 4403, life, BANCA from day 20 (26 March, Shanghai).
SIM = SimConfig(
    seed=7,
    branches=6,
    product_lines=2,
    channels=2,
    days=28,
    start=date(2026, 3, 6),
    scenarios=("mis-selling",),
)
COMPLAINTS = "complaint_rate_per_10k_policies"


def replay(
    settings: Settings, store: Store, registry: CollectorRegistry, sim: SimConfig = SIM
) -> Iterator[AlertEngine]:
    """Every simulated hour as one record, each followed by a checkpoint and the alert hook —
    what the worker does, without Kafka; yields after each hour."""
    metrics = Metrics(registry)
    stages = Stages(settings, metrics, store, partitions=1)
    closer = stages.closer
    engine = AlertEngine(store, settings, metrics)
    for offset, hour in enumerate(generate(sim)):
        stages.handle(orjson.dumps(hour), "events", 0, offset)
        stages.intake.save(stages.intake.take_flush())
        closer.poll()
        flush = closer.take_flush()
        assert flush is not None  # forced
        closer.save(flush)
        stages.intake.heard_of_close(flush.closed_through)
        engine.after_checkpoint(
            [a.as_dict() for a in flush.anomalies],
            flush.readings,
            closer.aggregator.slicer.paths.values(),
        )
        yield engine


def test_mis_selling_opens_one_inspection_and_notifies_each_receiver_once(
    tmp_path: Path,
    store_url: str,
    receiver_factory: Callable[[], Receiver],
    alertmanager_factory: Callable[[Receiver], Alertmanager],
) -> None:
    am = alertmanager_factory(receiver_factory())
    hook = receiver_factory()
    settings = Settings(
        data_dir=tmp_path,
        database_url=store_url,
        bucket_seconds=86400,
        allowed_lateness_seconds=3600,
        alertmanager_url=am.url,
        webhook_urls={"44": (hook.url,)},
        webhook_secret=SECRET,
        public_url="http://qualmon.test:8000",
    )
    store = open_store(settings.store_url)
    registry = CollectorRegistry()
    steps = replay(settings, store, registry)
    engine = next(steps)
    published: list[tuple[str, bytes, bytes]] = []

    async def publish(topic: str, key: bytes, value: bytes) -> None:
        published.append((topic, key, value))

    dispatcher = Dispatcher(engine, publish)

    def run(step: Callable[[], Awaitable[object]]) -> None:
        async def once() -> None:
            await step()
            await dispatcher.close()  # its HTTP client belongs to this event loop

        asyncio.run(once())

    for _ in steps:  # up to the hour the wave is first seen
        if store.count("inspections"):
            break
    run(dispatcher.deliver_due)
    (alert,) = store.alerts(indicator=COMPLAINTS)[0]

    def notified() -> list:
        return [
            b for b in am.hook.bodies() if b["alerts"][0]["labels"]["alert_id"] == alert["alert_id"]
        ]

    wait_until(notified, 30, "Alertmanager's notification")
    run(dispatcher.resend)  # kept alive in Alertmanager: not a new notification
    for _ in steps:  # the rest of the run: more anomalous buckets, then back to normal
        pass

    # One inspection, on the slice the wave hit; the roll-ups (org 44, the company's life line,
    # BANCA) joined the one alert instead of paging on their own.
    inspections, total = store.inspections()
    assert total == 1
    (inspection,) = inspections
    assert (inspection["org"], inspection["product_line"], inspection["channel"]) == (
        "4403",
        "life",
        "BANCA",
    )
    assert (inspection["rule"], inspection["indicator"]) == ("complaint_concentration", COMPLAINTS)
    # The wave's alert, resolved once the rate scored normal; on the wave's last day, past the
    # cooldown, the rate alarmed again as a new alert, which joined the same inspection (and
    # so pages nobody: one incident pages once).
    alert, *again = sorted(store.alerts(indicator=COMPLAINTS)[0], key=lambda a: a["opened_at"])
    assert [a["state"] for a in [alert, *again]] == ["resolved"] + ["firing"] * len(again)
    assert all(a["inspection_id"] == inspection["inspection_id"] for a in [alert, *again])
    assert (alert["severity"], alert["org_path"]) == ("critical", "00/44/4403")
    assert alert["anomalies"] >= 7  # the slice itself and its roll-ups, on two days
    # The complaint alerts on the same scope (the concentration test, the own-channel rate and
    # its company-wide roll-up) joined the open inspection instead of opening twins.
    absorbed = set(store.inspection_alert_ids(inspection["inspection_id"]))
    assert alert["alert_id"] in absorbed
    others = [
        a for a in store.alerts(limit=100)[0] if a["alert_id"] in absorbed - {alert["alert_id"]}
    ]
    assert {a["indicator"] for a in others} <= {
        COMPLAINTS,
        "complaints_concentration",
        f"{COMPLAINTS}_own",
        f"{COMPLAINTS}_regulator",
    }

    run(dispatcher.deliver_due)

    # The signed webhook: the alert opened once, then resolved when the slice scored normal.
    events = [(b["event"], b["alert"]["alert_id"]) for b in hook.bodies()]
    assert events == [("opened", alert["alert_id"]), ("resolved", alert["alert_id"])]
    first = hook.requests[0]
    expected = hmac.new(
        SECRET.encode(),
        f"{first.headers['X-Qualmon-Timestamp']}.".encode() + first.body,
        hashlib.sha256,
    ).hexdigest()
    assert first.headers["X-Qualmon-Signature"] == f"sha256={expected}"
    assert hook.bodies()[0]["alert"]["inspection_id"] == inspection["inspection_id"]

    # Alertmanager got it, with the way back to the anomaly, told its receiver once, and once
    # more when qualmon sent endsAt.
    wait_until(
        lambda: any(b["status"] == "resolved" for b in notified()),
        30,
        "Alertmanager's resolved notification",
    )
    assert [b["status"] for b in notified()] == ["firing", "resolved"]
    sent = store.notifications(alert_id=alert["alert_id"], receiver="alertmanager")
    assert [(n["event"], n["state"]) for n in sent] == [("opened", "sent"), ("resolved", "sent")]
    ended = notified()[-1]["alerts"][0]
    assert ended["labels"]["org"] == "4403" and ended["labels"]["severity"] == "critical"
    assert ended["generatorURL"] == (f"http://qualmon.test:8000/v1/anomalies/{alert['anomaly_id']}")
    assert ended["endsAt"] != "0001-01-01T00:00:00Z"

    topics = [(t, orjson.loads(v)["event"]) for t, _, v in published]
    assert (settings.inspections_topic, "opened") in topics
    # Every alert is on the topic once, paging or not: the wave (twice), and the signals that
    # joined its inspection; nothing elsewhere.
    assert topics.count((settings.alerts_topic, "opened")) == store.count("alerts") == 5
    assert set(absorbed) == {a["alert_id"] for a in store.alerts(limit=100)[0]}
    assert registry.get_sample_value("qualmon_inspections_open") == 1
    assert (
        registry.get_sample_value(
            "qualmon_alert_notifications_total", {"receiver": "webhook", "outcome": "sent"}
        )
        == 2
    )
    store.close()


def replayed(tmp_path: Path, scenario: str) -> Store:
    """The store after the whole run of one scenario, in daily buckets on SQLite."""
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        bucket_seconds=86400,
        allowed_lateness_seconds=3600,
    )
    store = open_store(settings.store_url)
    for _ in replay(settings, store, CollectorRegistry(), replace(SIM, scenarios=(scenario,))):
        pass
    return store


def test_a_branchs_hotline_outage_is_one_inspection_of_the_branch(tmp_path: Path) -> None:
    # Every line and channel of 3101 loses half its calls for a day. Each alert first names its
    # narrowest slice (one line in one channel); the other lines of the branch widen it to the
    # branch, and the company's roll-ups join it rather than opening inspections of their own.
    store = replayed(tmp_path, "hotline-outage")
    alerts, _ = store.alerts()
    assert sorted(a["indicator"] for a in alerts) == [
        "hotline_answer_20s_rate",
        "hotline_answer_rate",
    ]
    assert {(a["org_path"], a["product_line"], a["channel"]) for a in alerts} == {
        ("00/31/3101", "*", "*")
    }
    (inspection,), _ = store.inspections()
    assert (inspection["org"], inspection["product_line"], inspection["channel"]) == (
        "3101",
        "*",
        "*",
    )
    assert {a["inspection_id"] for a in alerts} == {inspection["inspection_id"]}
    store.close()


def test_a_surrender_spike_across_the_company_is_one_company_wide_alert(tmp_path: Path) -> None:
    # A crediting-rate cut: policyholders of every branch surrender the line at eight times
    # their usual rate. Each branch is anomalous, and so is the company's line even without
    # its largest region: one company-wide incident, not an alert per branch.
    store = replayed(tmp_path, "surrender-spike")
    (alert,), _ = store.alerts(indicator="surrender_rate")
    assert (alert["org"], alert["product_line"], alert["channel"]) == ("*", "life", "*")
    assert alert["summary"] == "surrender_rate is anomalous in the whole company, product line life"
    assert alert["anomalies"] > 3  # the company's line and the branches it covers
    (inspection,), _ = store.inspections()
    assert (inspection["org"], inspection["product_line"]) == ("*", "life")
    assert alert["inspection_id"] == inspection["inspection_id"]
    store.close()
