"""The alert path inside a running ``qualmon run`` on the real broker: an outage posted over
HTTP becomes an alert delivered to a signed webhook and the alerts topic, and an
acknowledgement through the API goes out on the topic as well."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import wait_until
from tests.factories import at, call, hotline_hours
from tests.receivers import Alertmanager, Receiver
from tests.test_end_to_end import post, records

pytestmark = pytest.mark.broker


def test_an_outage_reaches_alertmanager_the_webhook_and_the_alerts_topic(
    service_factory, kafka_settings, receiver_factory, alertmanager_factory
) -> None:
    am: Alertmanager = alertmanager_factory(receiver_factory())
    receiver: Receiver = receiver_factory()
    service = service_factory(
        QUALMON_WEBHOOK_URLS=f'{{"*": ["{receiver.url}"]}}',
        QUALMON_WEBHOOK_SECRET="end-to-end-secret-0001",
        QUALMON_ALERTMANAGER_URL=am.url,
    ).start()
    normal = hotline_hours(range(0, 14), calls=100, answered=95, prefix="n")
    outage = hotline_hours(range(14, 15), calls=100, answered=40, prefix="o")
    post(service, [*normal, *outage, call("closer", at(16.5), True)])

    # The outage shows in the answer rate and in the 20-second rate: the first alert opens an
    # inspection (it is critical), the other joins it, and the incident pages once.
    (body,) = wait_until(receiver.bodies, 60, "the webhook notification")
    alert = body["alert"]
    assert (body["event"], alert["org"]) == ("opened", "4403")
    assert alert["indicator"] in ("hotline_answer_rate", "hotline_answer_20s_rate")
    assert alert["severity"] == "critical"  # 40 of 100 answered against 95: p far below 1e-8
    # Alertmanager has it, and its generatorURL leads back to the anomaly in this service.
    (shown,) = wait_until(
        lambda: [a for a in am.alerts() if a["labels"]["alert_id"] == alert["alert_id"]],
        30,
        "the alert in Alertmanager",
    )
    anomaly = service.client.get(shown["generatorURL"].removeprefix(str(service.client.base_url)))
    assert anomaly.status_code == 200 and anomaly.json()["value"] == 0.4
    listed = service.client.get("/v1/alerts").json()
    assert alert["alert_id"] in [a["alert_id"] for a in listed["items"]]
    acked = service.client.post(
        f"/v1/alerts/{alert['alert_id']}/ack", headers={"X-Qualmon-User": "on.call"}
    )
    assert acked.json()["acknowledged_by"] == "on.call"

    def topic_events() -> list[str]:
        bodies = [
            orjson.loads(r.value)
            for r in records(kafka_settings, kafka_settings.alerts_topic, 1000)
        ]
        return [b["event"] for b in bodies if b["alert"]["alert_id"] == alert["alert_id"]]

    events = wait_until(
        lambda: "acknowledged" in topic_events() and topic_events(),
        30,
        "the acknowledgement on the alerts topic",
    )
    assert events[0] == "opened" and events[-1] == "acknowledged"
    assert service.metric("qualmon_alerts_firing", indicator=alert["indicator"]) == 1
    assert service.metric("qualmon_alerts_acknowledged", indicator=alert["indicator"]) == 1
    assert len(receiver.bodies()) == 1  # the alert that joined the inspection paged nobody
