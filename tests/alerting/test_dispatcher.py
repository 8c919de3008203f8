"""Delivering the outbox to real HTTP receivers on loopback: signatures, retries with backoff,
dead letters, and the task that runs beside the consume loop."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from alerting.dispatcher import Dispatcher
from alerting.engine import AlertEngine
from monitor.broker import free_port
from monitor.metrics import Metrics
from monitor.settings import Settings
from monitor.store import Store, open_store
from tests.alerting.helpers import Clock, anomaly
from tests.conftest import wait_until
from tests.receivers import Alertmanager, Receiver

SECRET = "another-test-secret-42"


def setup(
    tmp_path: Path, url: str, **overrides: object
) -> tuple[Store, AlertEngine, Dispatcher, Clock]:
    settings = Settings(
        data_dir=tmp_path,
        webhook_urls={"*": (url,)},
        webhook_secret=SECRET,
        notify_max_attempts=3,
        notify_backoff_seconds=10,
        **overrides,
    )
    store = open_store(settings.store_url)
    clock = Clock()
    engine = AlertEngine(store, settings, Metrics(CollectorRegistry()), clock)
    engine.orgs.learn(["00", "00/44", "00/44/4403"])
    return store, engine, Dispatcher(engine, None, clock), clock


def deliver(dispatcher: Dispatcher) -> int:
    async def once() -> int:
        try:
            return await dispatcher.deliver_due()
        finally:
            await dispatcher.close()

    return asyncio.run(once())


def test_a_signed_webhook_carries_a_verifiable_hmac(tmp_path: Path, receiver: Receiver) -> None:
    store, engine, dispatcher, clock = setup(tmp_path, receiver.url)
    engine.ingest([anomaly(10)])
    assert deliver(dispatcher) == 3  # the webhook, and the alert and inspection topic records
    (request,) = receiver.requests
    mac = hmac.new(SECRET.encode(), f"{int(clock.now)}.".encode() + request.body, hashlib.sha256)
    assert request.headers["X-Qualmon-Signature"] == f"sha256={mac.hexdigest()}"
    assert request.headers["X-Qualmon-Timestamp"] == str(int(clock.now))
    assert request.headers["X-Qualmon-Event"] == "opened"
    body = request.json()
    assert body["alert"]["org"] == "4403" and body["event"] == "opened"
    assert body["url"].endswith(f"/v1/alerts/{body['alert']['alert_id']}")
    assert deliver(dispatcher) == 0  # sent rows are not sent again
    store.close()


def test_a_receiver_that_stays_down_ends_in_a_dead_letter(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.status = 503
    store, engine, dispatcher, clock = setup(tmp_path, receiver.url)
    engine.ingest([anomaly(10)])
    assert deliver(dispatcher) == 2  # the topic records only
    assert deliver(dispatcher) == 0  # not due yet: the backoff is 10 s
    assert len(receiver.requests) == 1
    clock.now += 10
    deliver(dispatcher)
    clock.now += 19  # the next wait is 20 s
    deliver(dispatcher)
    assert len(receiver.requests) == 2
    clock.now += 1
    deliver(dispatcher)
    (row,) = store.notifications(receiver=f"webhook:{receiver.url}")
    assert (row["state"], row["attempts"]) == ("dead", 3)
    assert "503" in row["last_error"]
    assert len({r.headers["X-Qualmon-Delivery"] for r in receiver.requests}) == 1
    registry = engine.metrics.registry  # type: ignore[union-attr]
    outcome = {"receiver": "webhook"}
    assert (
        registry.get_sample_value(
            "qualmon_alert_notifications_total", {**outcome, "outcome": "failed"}
        )
        == 2
    )
    assert (
        registry.get_sample_value(
            "qualmon_alert_notifications_total", {**outcome, "outcome": "dead_letter"}
        )
        == 1
    )
    clock.now += 3600
    deliver(dispatcher)
    assert len(receiver.requests) == 3  # a dead letter is not retried
    store.close()


def test_a_refusal_is_a_dead_letter_at_once(tmp_path: Path, receiver: Receiver) -> None:
    receiver.status = 400
    store, engine, dispatcher, _ = setup(tmp_path, receiver.url)
    engine.ingest([anomaly(10)])
    deliver(dispatcher)
    (row,) = store.notifications(receiver=f"webhook:{receiver.url}")
    assert (row["state"], row["attempts"]) == ("dead", 1)
    store.close()


def test_a_receiver_back_up_gets_the_retry(
    tmp_path: Path, receiver_factory: Callable[..., Receiver]
) -> None:
    port = free_port()
    down = f"http://127.0.0.1:{port}/hook"  # nobody listens there yet
    store, engine, dispatcher, clock = setup(tmp_path, down)
    engine.ingest([anomaly(10)])
    deliver(dispatcher)
    (row,) = store.notifications(receiver=f"webhook:{down}")
    assert (row["state"], row["attempts"]) == ("pending", 1)
    assert "ConnectError" in row["last_error"]
    back = receiver_factory(port)
    clock.now += 10
    deliver(dispatcher)
    (row,) = store.notifications(receiver=f"webhook:{down}")
    assert (row["state"], row["attempts"]) == ("sent", 2)
    assert [b["event"] for b in back.bodies()] == ["opened"]
    store.close()


def test_the_task_delivers_when_woken_without_blocking_the_caller(
    tmp_path: Path, receiver: Receiver
) -> None:
    settings = Settings(
        data_dir=tmp_path, webhook_urls={"*": (receiver.url,)}, webhook_secret=SECRET
    )
    store = open_store(settings.store_url)
    engine = AlertEngine(store, settings)
    dispatcher = Dispatcher(engine)

    async def scenario() -> list:
        task = asyncio.create_task(dispatcher.run(idle_seconds=30))
        await asyncio.sleep(0)  # let it start and go idle
        while store.notifications(state="pending") or not dispatcher._loop:
            await asyncio.sleep(0.01)
        engine.ingest([anomaly(10)])  # queues only; the task is woken through on_change
        for _ in range(500):
            if receiver.requests:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return receiver.bodies()

    bodies = asyncio.run(scenario())
    assert [b["event"] for b in bodies] == ["opened"]
    store.close()


def test_an_acknowledgement_silences_the_alert_in_alertmanager(
    tmp_path: Path,
    receiver_factory: Callable[..., Receiver],
    alertmanager_factory: Callable[[Receiver], Alertmanager],
) -> None:
    am = alertmanager_factory(receiver_factory())
    settings = Settings(data_dir=tmp_path, alertmanager_url=am.url)
    store = open_store(settings.store_url)
    engine = AlertEngine(store, settings)
    dispatcher = Dispatcher(engine)
    engine.ingest([anomaly(10)])
    deliver(dispatcher)
    wait_until(am.hook.bodies, 30, "Alertmanager's firing notification")
    (alert,) = store.alerts()[0]

    engine.acknowledge(alert["alert_id"], "on.call")
    deliver(dispatcher)
    silences = httpx.get(f"{am.url}/api/v2/silences", timeout=5).json()
    assert [(s["matchers"][0]["value"], s["status"]["state"]) for s in silences] == [
        (alert["alert_id"], "active")
    ]
    assert silences[0]["createdBy"] == "qualmon (on.call)"
    asyncio.run(_resend(dispatcher))  # still alive in Alertmanager, but suppressed there
    (shown,) = am.alerts()
    assert shown["status"]["state"] == "suppressed"
    assert shown["annotations"]["acknowledged_by"] == "on.call"
    assert [b["status"] for b in am.hook.bodies()] == ["firing"]
    store.close()


async def _resend(dispatcher: Dispatcher) -> None:
    await dispatcher.resend()
    await dispatcher.close()
