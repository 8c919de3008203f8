"""The queries of qualmon's dashboards, read from their JSON, with variables substituted."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
#: What a person sees first: every slice variable at ``*`` (all), default windows.
VARIABLES = {"org": "*", "product_line": "*", "channel": "*", "window": "5m"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def substitute(text: str) -> str:
    """Replace ``$name`` and ``${name}`` of the dashboard variables.

    >>> substitute('x{org="$org"}[${window}]')
    'x{org="*"}[5m]'
    """
    for name, value in VARIABLES.items():
        text = text.replace("${" + name + "}", value)
        text = re.sub(r"\$" + name + r"\b", value, text)
    assert "$" not in text.replace("$__timeFilter", ""), f"unknown variable left in {text!r}"
    return text


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, query) for every panel target, annotation and query variable."""
    for panel in panels(dashboard):
        for target in panel.get("targets") or []:
            yield f"panel {panel.get('title')!r}", target
    for annotation in dashboard.get("annotations", {}).get("list", []):
        yield f"annotation {annotation['name']!r}", annotation
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            yield f"variable {variable['name']!r}", variable


def promql(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) with variables substituted; ``label_values(s, l)`` becomes ``s``."""
    for where, target in targets(dashboard):
        if target.get("datasource", {}).get("type") != "prometheus":
            continue
        if "expr" in target:
            yield where, substitute(target["expr"])
        else:
            query = target["query"]["query"]
            found = re.fullmatch(r"label_values\((.+), *(\w+)\)", query)
            assert found, f"{where}: unexpected variable query {query!r}"
            yield where, substitute(found.group(1))


def sql(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for where, target in targets(dashboard):
        if "rawSql" in target:
            yield where, substitute(target["rawSql"])


def datasource_refs(node: Any) -> Iterator[dict[str, Any]]:
    """Every ``datasource`` object anywhere in a dashboard."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict):
                yield value
            else:
                yield from datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_refs(item)
