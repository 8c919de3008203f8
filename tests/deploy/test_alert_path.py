"""The alert path with the real binaries: qualmon's rules in Prometheus, qualmon's Alertmanager
configuration, and a webhook stand-in on loopback in place of the notification gateway."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from monitor.broker import free_port
from tests.conftest import wait_until
from tests.deploy.live import prometheus, running
from tests.deploy.ops_files import ROOT

CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
GATEWAY = "https://alerts.example.invalid"
TOKEN = "test-token-not-a-secret"


class Gateway(ThreadingHTTPServer):
    """Records every webhook call: (path, Authorization header, JSON body)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    def received(self, path: str) -> list[dict]:
        return [body for p, _, body in self.calls if p == path]


class _Handler(BaseHTTPRequestHandler):
    server: Gateway

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.calls.append((self.path, self.headers.get("Authorization", ""), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def alertmanager(tmp_path: Path, gateway: Gateway) -> Iterator[int]:
    """qualmon's Alertmanager config, pointed at the stand-in gateway, on a free port.

    Only addresses, the token file and the quality route's group wait (30 s, kept short here
    so the test waits on an event, not a clock) differ from deploy/alertmanager/alertmanager.yml.
    """
    token = tmp_path / "token"
    token.write_text(TOKEN)
    text = CONFIG.read_text().replace(GATEWAY, f"http://127.0.0.1:{gateway.server_port}")
    text = text.replace("/run/secrets/alertmanager_webhook_token", str(token))
    config = yaml.safe_load(text)
    config["route"]["group_wait"] = "0s"
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        "prometheus-alertmanager", f"--config.file={tmp_path / 'am.yml'}",
        f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]  # fmt: skip
    with running(command, tmp_path / "am.log", port):
        yield port


def test_watchdog_reaches_the_dead_mans_switch_with_the_token(alertmanager, gateway) -> None:
    # Nothing to scrape: the Watchdog needs no data, which is the point of it.
    with prometheus(free_port(), alertmanager_port=alertmanager):
        wait_until(lambda: gateway.received("/heartbeat/qualmon"), 30, "the Watchdog heartbeat")
    (body, *_) = gateway.received("/heartbeat/qualmon")
    assert [a["labels"]["alertname"] for a in body["alerts"]] == ["Watchdog"]
    assert body["receiver"] == "deadmans-switch"
    authorization = {auth for path, auth, _ in gateway.calls if path == "/heartbeat/qualmon"}
    assert authorization == {f"Bearer {TOKEN}"}


def test_a_critical_anomaly_in_region_44_pages_its_quality_desk(alertmanager, gateway) -> None:
    now = datetime.now(UTC)
    alert = {
        "labels": {"alertname": "QualmonIndicatorAnomalyCritical", "severity": "critical",
                   "team": "quality", "indicator": "hotline_answer_rate", "org": "4403",
                   "product_line": "*", "channel": "*"},
        "annotations": {"summary": "hotline answer rate far outside its band in 4403"},
        "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=5)).isoformat(),
    }  # fmt: skip
    response = httpx.post(f"http://127.0.0.1:{alertmanager}/api/v2/alerts", json=[alert])
    assert response.status_code == 200, response.text
    wait_until(lambda: gateway.received("/page/quality-region-44"), 30, "the region-44 page")
    (body,) = gateway.received("/page/quality-region-44")
    assert body["receiver"] == "quality-region-44-page"
    assert body["alerts"][0]["labels"]["org"] == "4403"
    assert not gateway.received("/page/quality-hq")


def test_qualmons_own_alert_pages_once_for_an_indicator_prometheus_also_alerts_on(
    alertmanager, gateway
) -> None:
    # The workers post QualmonAnomaly (alerting/payloads.py) and Prometheus fires its rule on the
    # same score: the rule's alert is inhibited, so the desk is paged once, with qualmon's.
    now = datetime.now(UTC)
    where = {"indicator": "hotline_answer_rate", "org": "4403", "product_line": "*",
             "channel": "*", "severity": "critical"}  # fmt: skip
    window = {"startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=5)).isoformat()}
    qualmon = {"labels": {"alertname": "QualmonAnomaly", "alert_id": "a1", "service": "qualmon",
                          **where}, **window}  # fmt: skip
    rule = {"labels": {"alertname": "QualmonIndicatorAnomalyCritical", "team": "quality",
                       **where}, **window}  # fmt: skip
    base = f"http://127.0.0.1:{alertmanager}/api/v2"
    assert httpx.post(f"{base}/alerts", json=[qualmon]).status_code == 200
    wait_until(lambda: gateway.received("/page/quality-region-44"), 30, "qualmon's page")
    # Prometheus evaluates its rule after qualmon's alert went out: the score gauge is set when
    # the bucket closes, and the rule waits its `for`.
    assert httpx.post(f"{base}/alerts", json=[rule]).status_code == 200

    def rule_state() -> dict:
        (alert,) = [a for a in httpx.get(f"{base}/alerts").json()
                    if a["labels"]["alertname"] == rule["labels"]["alertname"]]  # fmt: skip
        return alert["status"]

    wait_until(lambda: rule_state()["inhibitedBy"], 30, "the rule's alert to be inhibited")
    paged = [a["labels"]["alertname"] for body in gateway.received("/page/quality-region-44")
             for a in body["alerts"]]  # fmt: skip
    assert paged == ["QualmonAnomaly"]
