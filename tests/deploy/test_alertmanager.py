"""deploy/alertmanager: valid for the real amtool, routed by team, severity and org, and free of
credentials."""

from __future__ import annotations

import re

import pytest
import yaml

from alerting.payloads import labels as qualmon_labels
from streams.indicators import ANOMALY_NAMES, family_of
from tests.deploy.ops_files import ROOT, run

CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def test_config_is_valid() -> None:
    assert "SUCCESS" in run("amtool", "check-config", CONFIG)


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "Watchdog", "severity": "none", "team": "platform"}, "deadmans-switch"),
        ({"alertname": "QualmonWorkerDown", "severity": "critical", "team": "platform"},
         "platform-page"),
        ({"alertname": "QualmonFeedSilent", "severity": "warning", "team": "platform"},
         "platform-ticket"),
        ({"severity": "critical", "team": "quality", "org": "4403"}, "quality-region-44-page"),
        ({"severity": "major", "team": "quality", "org": "44"}, "quality-region-44"),
        ({"severity": "critical", "team": "quality", "org": "3201"}, "quality-hq-page"),
        ({"severity": "major", "team": "quality", "org": "*"}, "quality-hq"),
    ],
)  # fmt: skip
def test_alerts_route_by_team_severity_and_org(labels: dict[str, str], receiver: str) -> None:
    out = run("amtool", "config", "routes", "test", f"--config.file={CONFIG}",
              *(f"{k}={v}" for k, v in labels.items()))  # fmt: skip
    assert out.split("\n")[0].strip() == receiver


@pytest.mark.parametrize(
    ("kind", "indicator", "org", "severity", "receiver"),
    [
        ("anomaly", "complaints_concentration", "4403", "critical", "quality-region-44-page"),
        ("anomaly", "claim_sla_breach", "44", "major", "quality-region-44"),
        ("anomaly", "hotline_answer_rate", "3201", "critical", "quality-hq-page"),
        ("measure_overdue", "complaint_rate_per_10k_policies", "3201", "major", "quality-hq"),
        # A broken feed is the operators' to fix, whatever org it comes from.
        ("anomaly", "feed_silence", "4403", "critical", "platform-page"),
        ("anomaly", "amount_unit_jump", "3201", "major", "platform-ticket"),
    ],
)  # fmt: skip
def test_alerts_qualmon_posts_itself_reach_the_quality_desks(
    kind: str, indicator: str, org: str, severity: str, receiver: str
) -> None:
    # With QUALMON_ALERTMANAGER_URL set the worker posts its own alerts, with the labels of
    # alerting/payloads.py (no team label): they must page the quality desk of their org, not
    # fall through to the platform's ticket queue.
    alert = {"kind": kind, "alert_id": "a1", "indicator": indicator, "org": org,
             "product_line": "life", "channel": "BANCA", "severity": severity}  # fmt: skip
    out = run("amtool", "config", "routes", "test", f"--config.file={CONFIG}",
              *(f"{k}={v}" for k, v in qualmon_labels(alert).items()))  # fmt: skip
    assert out.split("\n")[0].strip() == receiver


def test_no_credentials_in_the_config() -> None:
    text = CONFIG.read_text()
    assert not re.search(r"^\s*(password|credentials|api_key|token|bearer_token):", text, re.M)
    assert "credentials_file: /run/secrets/alertmanager_webhook_token" in text
    for url in re.findall(r"url: (\S+)", text):
        assert url.startswith("https://alerts.example.invalid/"), url


def test_the_data_quality_route_names_every_data_quality_check() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    (route,) = [
        r
        for r in config["route"]["routes"]
        if any("feed_silence" in m for m in r.get("matchers", []))
    ]
    (matcher,) = [m for m in route["matchers"] if m.startswith("indicator=~")]
    names = set(matcher.split('"')[1].split("|"))
    assert names == {name for name in ANOMALY_NAMES if family_of(name) == "data_quality"}
