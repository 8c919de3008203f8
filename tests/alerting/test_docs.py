"""The Prometheus rules shown in docs/alerting.md are valid and use metrics qualmon exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.metrics import Metrics

DOC = Path(__file__).parents[2] / "docs" / "alerting.md"


def test_documented_rules_pass_promtool_and_name_exported_metrics(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (make system-deps installs it)")
    block = re.search(r"```yaml\n(groups:.*?)```", DOC.read_text(), re.S)
    assert block is not None
    rules = tmp_path / "rules.yml"
    rules.write_text(block.group(1))
    check = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    exported = {
        sample.name
        for family in Metrics(CollectorRegistry()).registry.collect()
        for sample in family.samples
    }
    used = set(re.findall(r"qualmon_[a-z_]+", block.group(1)))
    assert used and used <= exported
