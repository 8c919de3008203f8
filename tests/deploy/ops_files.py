"""Paths of the ops artefacts and small readers shared by the deploy and grafana tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*_test.yml"))
RUNBOOKS = ROOT / "docs" / "runbooks"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    return [rule for f in RULE_FILES for group in load(f)["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def run(*args: str | Path, cwd: Path = ROOT, stdin: str | None = None) -> str:
    """Run a tool; fail the test with its output when it exits non-zero."""
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{output}"
    return output


#: Metric names in a PromQL expression: identifiers followed by ``{``, ``[`` or an operator,
#: that start with ``qualmon_`` (recording rules are named ``level:metric:op`` with colons).
METRIC = re.compile(r"\bqualmon_[a-z0-9_]+")


def metric_names(expr: str) -> set[str]:
    """Exported metric families an expression reads (histogram ``_bucket`` kept as is).

    >>> sorted(metric_names('sum(rate(qualmon_events_total{outcome="late"}[5m])) / qualmon:x'))
    ['qualmon_events_total']
    """
    return set(METRIC.findall(expr))
