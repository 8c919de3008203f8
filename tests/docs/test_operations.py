"""docs/operations.md stays in step with the code it describes."""

from __future__ import annotations

from monitor.settings import Settings
from tests.deploy.ops_files import ROOT, alerts

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
