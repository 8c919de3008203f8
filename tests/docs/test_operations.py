"""docs/operations.md stays in step with the code it describes."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

from monitor.metrics import Metrics
from monitor.settings import Settings
from streams.indicators import INDICATORS
from streams.rolling import WINDOWS
from tests.deploy.ops_files import ROOT, RUNBOOKS, alerts

GUIDE = (ROOT / "docs" / "operations.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    rows = [line for line in GUIDE.splitlines() if line.startswith("| `QUALMON_")]
    for name in Settings.model_fields:
        variable = f"`QUALMON_{name.upper()}`"
        assert any(variable in row.split(" | ")[0] for row in rows), f"{variable} is not in it"


def test_every_alert_is_in_the_runbook_index() -> None:
    for alert in alerts():
        row = f"| {alert['alert']} | {alert['labels']['team']} | {alert['labels']['severity']} |"
        assert row in GUIDE, f"runbook index lacks or misstates {alert['alert']}"
        assert f"(runbooks/{alert['alert']}.md)" in GUIDE


def test_every_metric_the_guide_and_runbooks_name_is_exported() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    exported = {s.name for family in registry.collect() for s in family.samples}
    exported |= {family.name for family in registry.collect()}
    texts = [GUIDE, *(p.read_text() for p in RUNBOOKS.glob("*.md"))]
    # Whole names only: `qualmon_indicator_…` and regex prefixes end in `_`.
    named = {
        m for text in texts for m in re.findall(r"\b(?:qualmon|process)_[a-z0-9_]*[a-z0-9]\b", text)
    }
    assert "process_resident_memory_bytes" in named
    assert named <= exported, f"named but not exported: {sorted(named - exported)}"


def test_the_prometheus_sizing_bounds_what_a_worker_exports() -> None:
    # An entry of the series cap is a reading (six series, eight with the compliance interval)
    # or a window of a slice (one gauge per indicator): the guide's bound must hold for both.
    found = re.search(
        r"\(([\d,]+) per worker, then[\s\S]+?(?:at most|up to) ([\d,]+) series per worker", GUIDE
    )
    assert found, "the Prometheus sizing paragraph has changed shape"
    cap, bound = (int(n.replace(",", "")) for n in found.groups())
    assert cap == Metrics(CollectorRegistry()).max_series
    assert bound >= cap * max(8, len(INDICATORS))
    windows = len([w for w in WINDOWS if w != "bucket"])
    assert f"{windows} × {len(INDICATORS)} = {windows * len(INDICATORS)}" in GUIDE
