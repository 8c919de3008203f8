"""deploy/prometheus: config, rules and rule tests checked by the real promtool; every alert in
the standard shape with a runbook; and the metrics of a running qualmon accepted by promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.live import feed
from tests.deploy.ops_files import (
    PROMETHEUS,
    RULE_FILES,
    RULE_TESTS,
    RUNBOOKS,
    alerts,
    load,
    metric_names,
    rules,
    run,
)  # fmt: skip

RUNBOOK_BASE = "https://qualmon.example/runbooks/"


def test_prometheus_config_and_its_rule_files_are_valid() -> None:
    out = run("promtool", "check", "config", PROMETHEUS / "prometheus.yml")
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in out


def test_rule_files_are_valid() -> None:
    out = run("promtool", "check", "rules", *RULE_FILES)
    assert out.count("SUCCESS") == len(RULE_FILES)


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool rule tests found"
    out = run("promtool", "test", "rules", *RULE_TESTS)
    assert "SUCCESS" in out


def test_rule_unit_tests_fail_when_an_alert_is_broken(tmp_path: Path) -> None:
    # The rule tests must be able to fail: lower the worker-down delay and they must notice.
    shutil.copytree(PROMETHEUS, tmp_path / "prometheus")
    pipeline = tmp_path / "prometheus" / "rules" / "pipeline.yml"
    text = pipeline.read_text()
    assert text.count('expr: up{job="qualmon-worker"} == 0\n        for: 2m') == 1
    pipeline.write_text(text.replace(
        "expr: up{job=\"qualmon-worker\"} == 0\n        for: 2m",
        "expr: up{job=\"qualmon-worker\"} == 0\n        for: 0m",
    ))  # fmt: skip
    tests = tmp_path / "prometheus" / "tests" / "alerts_test.yml"
    done = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True, text=True)
    assert done.returncode != 0
    assert "QualmonWorkerDown" in done.stdout + done.stderr


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_every_alert_has_the_standard_fields_and_a_runbook(alert: dict) -> None:
    assert {"alert", "expr", "for", "labels", "annotations"} <= alert.keys()
    assert alert["labels"]["severity"] in {"critical", "major", "warning", "none"}
    assert alert["labels"]["team"] in {"platform", "quality"}
    annotations = alert["annotations"]
    assert {"summary", "description", "runbook_url"} <= annotations.keys()
    assert all(annotations[k].strip() for k in ("summary", "description"))
    assert annotations["runbook_url"] == f"{RUNBOOK_BASE}{alert['alert']}.md"
    runbook = RUNBOOKS / f"{alert['alert']}.md"
    assert runbook.is_file(), f"missing runbook {runbook}"
    text = runbook.read_text()
    assert text.startswith(f"# {alert['alert']}\n")
    for part in ("**What it means.**", "**How to check.**", "**How to fix.**"):
        assert part in text, f"{runbook.name} lacks {part}"


def test_every_runbook_belongs_to_an_alert() -> None:
    names = {a["alert"] for a in alerts()}
    assert {p.stem for p in RUNBOOKS.glob("*.md")} == names  # the index: tests/docs


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names <= firing
    # The Watchdog has no quiet case by design: it must fire at every evaluation.
    assert names - {"Watchdog"} <= quiet
    assert {a["alert"] for a in alerts() if a["alert"] == "Watchdog"} == {"Watchdog"}


def test_watchdog_always_fires_and_pages_nobody() -> None:
    (watchdog,) = [a for a in alerts() if a["alert"] == "Watchdog"]
    assert watchdog["expr"] == "vector(1)"
    assert watchdog["labels"]["severity"] == "none"


@pytest.mark.broker
def test_metrics_of_a_running_qualmon_pass_promtool_and_cover_the_rules(
    service_factory, kafka_settings
) -> None:
    service = service_factory().start()
    feed(service, kafka_settings.kafka_bootstrap or "", kafka_settings.events_topic)
    text = service.client.get("/metrics").text
    run("promtool", "check", "metrics", stdin=text)  # empty output, exit 0: no lint findings

    exported = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    used = set().union(*(metric_names(r["expr"]) for r in rules()))
    assert used, "the rules read no qualmon metric?"
    assert used <= exported, f"rules read metrics qualmon does not export: {used - exported}"
