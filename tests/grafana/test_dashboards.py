"""grafana/: dashboards built by grafana-foundation-sdk and up to date, valid against its typed
dashboard model, units on every panel, data sources that resolve, PromQL that promtool accepts,
and SQL that PostgreSQL accepts against the store's tables."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard

from grafana import build_dashboards
from grafana.panels import POSTGRES_TYPE
from monitor.metrics import band_metric
from monitor.store import open_store
from streams.indicators import INDICATORS
from tests.grafana.queries import DASHBOARDS, ROOT, datasource_refs, load, panels, promql, sql

PROVISIONING = ROOT / "grafana" / "provisioning"
READER_SQL = ROOT / "deploy" / "postgres" / "grafana-reader.sql"
IDS = [p.stem for p in DASHBOARDS]


def test_the_four_dashboards_are_there_and_up_to_date() -> None:
    assert set(IDS) == set(build_dashboards.DASHBOARDS)
    for path in DASHBOARDS:
        assert path.read_text() == build_dashboards.render(path.stem), (
            f"{path.name} differs from what grafana/build_dashboards.py writes; run "
            "`python -m grafana.build_dashboards`"
        )


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_dashboard_round_trips_through_the_sdk_model(path: Path) -> None:
    # Read back with the SDK's typed model and written again, a dashboard that has a field the
    # schema does not know, or lacks one it requires, would come out different.
    data = load(path)
    again = json.loads(json.dumps(Dashboard.from_json(data).to_json(), default=_to_json))
    assert again == data


def test_the_round_trip_catches_an_unknown_field() -> None:
    data = load(DASHBOARDS[0])
    data["panels"][0]["fieldConfig"]["defaults"]["unitt"] = "s"
    again = json.loads(json.dumps(Dashboard.from_json(data).to_json(), default=_to_json))
    assert again != data


def _to_json(obj: object) -> object:
    return obj.to_json()  # type: ignore[attr-defined]


def test_dashboard_uids_are_fixed_and_unique() -> None:
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert sorted(uids) == sorted(
        ["qualmon-overview", "qualmon-drilldown", "qualmon-inspections", "qualmon-pipeline"]
    )


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_every_panel_has_a_unit_and_a_query(path: Path) -> None:
    for panel in panels(load(path)):
        if panel["type"] == "row":
            continue
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']!r} has no unit"
        # Grafana's JSON model refuses "options": null (grafana-foundation-sdk issue 1203).
        assert isinstance(panel.get("options"), dict), f"{panel['title']!r} has no options"
        assert panel["targets"], f"{panel['title']!r} has no query"


@pytest.mark.parametrize("path", DASHBOARDS, ids=IDS)
def test_template_variables_where_meaningful(path: Path) -> None:
    names = {v["name"] for v in load(path)["templating"]["list"]}
    expected = {
        "quality-overview": {"org"},
        "drill-down": {"org", "product_line", "channel"},
        "anomalies-and-inspections": {"org", "product_line", "channel", "window"},
        "pipeline-health": {"window"},
    }[path.stem]
    assert names == expected


def test_every_datasource_uid_resolves_to_a_provisioned_one() -> None:
    provisioned = {
        d["uid"]: d["type"]
        for f in (PROVISIONING / "datasources").glob("*.yml")
        for d in yaml.safe_load(f.read_text())["datasources"]
    }
    assert provisioned == {"qualmon-prometheus": "prometheus", "qualmon-postgres": POSTGRES_TYPE}
    for path in DASHBOARDS:
        refs = list(datasource_refs(load(path)))
        assert refs
        for ref in refs:
            assert provisioned.get(ref["uid"]) == ref["type"], f"{path.name}: {ref} unresolved"


def test_dashboard_provider_points_where_compose_mounts_the_dashboards() -> None:
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "qualmon.yml").read_text())[
        "providers"
    ]
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"../grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_every_promql_query_passes_promtool(tmp_path: Path) -> None:
    exprs = [(f"{p.stem}: {where}", e) for p in DASHBOARDS for where, e in promql(load(p))]
    assert len(exprs) > 40
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:query_{i}:check", "expr": e} for i, (_, e) in enumerate(exprs)
    ]}]}  # fmt: skip
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in done.stdout


def test_promtool_check_catches_a_broken_query(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "dashboard:broken:check", "expr": "sum(rate(qualmon_events_total[5m])"}
    ]}]}))  # fmt: skip
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode != 0


# -- SQL against a real PostgreSQL -------------------------------------------------------------

#: One row each in the store's own tables (created by its migrations), as the worker and the
#: inspections API would write them.
SEED = """
INSERT INTO anomalies (anomaly_id, indicator, org, product_line, channel, bucket_start,
    bucket_seconds, value, expected, lower, upper, score, k, n, detector, severity, created_at)
VALUES ('a1', 'hotline_answer_rate', '4403', '*', '*', '2026-03-04T14:00:00+08:00', 3600, 0.33,
    0.95, 0.9, 1.0, 1.0, 20, 60, 'ProportionDetector', 'critical', 1772604000);
INSERT INTO anomaly_feedback VALUES (1, 'a1', 'true_positive', 'switch failure',
    extract(epoch FROM now()));
INSERT INTO inspections VALUES ('i1', 'alert:x', 'severity', 'Hotline outage 4403',
    'hotline_answer_rate', '4403', '00/44/4403', '*', '*', 'measures_set', 0,
    extract(epoch FROM now() - interval '3 days'), extract(epoch FROM now()), NULL);
INSERT INTO measures VALUES ('m1', 'i1', 'Second carrier', 'IT', 'ops',
    extract(epoch FROM now() - interval '1 day'), NULL, 'hotline_answer_rate', '4403', '*', '*',
    0.95, 'planned', NULL, extract(epoch FROM now()), extract(epoch FROM now()));
"""


def _psql(database: str, script: str, *args: str, user: str = "postgres") -> str:
    done = _run_psql(database, "-c", script, *args, user=user)
    assert done.returncode == 0, f"psql failed:\n{done.stderr}\n--- script ---\n{script}"
    return done.stdout


def _run_psql(database: str, *args: str, user: str = "postgres") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", user, "-d", database, "-v", "ON_ERROR_STOP=1",
         "-X", "-q", "-A", "-t", *args],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


@pytest.fixture
def postgres_database() -> object:
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed, so the dashboards' SQL cannot be run")
    probe = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-X", "-c", "SELECT 1"],
                           capture_output=True, text=True, timeout=10)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {probe.stderr.strip()}")
    name = f"qualmon_dash_{uuid.uuid4().hex[:8]}"
    _psql("postgres", f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        _psql("postgres", f"DROP DATABASE {name}")


def _dashboard_sql() -> list[tuple[str, str, str]]:
    """(dashboard, where, SQL) with Grafana's time-filter macro expanded to this year."""
    return [
        (p.stem, w, re.sub(r"\$__timeFilter\(([^)]*)\)",
                           r"\1 BETWEEN '2026-01-01T00:00:00Z' AND '2027-01-01T00:00:00Z'", q))
        for p in DASHBOARDS for w, q in sql(load(p))
    ]  # fmt: skip


def test_every_sql_query_runs_on_postgresql_against_the_store_tables(postgres_database) -> None:
    open_store(f"postgresql://postgres@127.0.0.1:5432/{postgres_database}").close()  # migrates
    _psql(postgres_database, SEED)
    queries = _dashboard_sql()
    assert len(queries) == 3
    for stem, where, query in queries:
        rows = _psql(postgres_database, query).strip().splitlines()
        assert len(rows) == 1, f"{stem} {where}: expected the one seeded row, got {rows}"


def test_grafana_reads_the_store_as_a_role_that_cannot_write(postgres_database) -> None:
    # As the store's owner, Grafana (and whoever edits a panel or uses Explore) could rewrite
    # anomalies, inspections and checkpoints. It logs in as the role the SQL file creates.
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    role = compose["services"]["grafana"]["environment"]["GRAFANA_STORE_USER"]
    assert role == "grafana_reader" and f"CREATE ROLE {role}" in READER_SQL.read_text()
    if _psql("postgres", f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'").strip():
        pytest.skip(f"role {role} already exists on this server; the test would change it")
    database = postgres_database
    open_store(f"postgresql://postgres@127.0.0.1:5432/{database}").close()  # migrates
    _psql(database, SEED)
    unset = _run_psql(database, "-f", str(READER_SQL))
    assert unset.returncode != 0 and "reader_password is not set" in unset.stderr
    try:
        for _ in range(2):  # compose runs it at every `up`
            assert _run_psql(database, "-f", str(READER_SQL),
                             "-v", "reader_password=example-only").returncode == 0  # fmt: skip
        for stem, where, query in _dashboard_sql():
            rows = _psql(database, query, user=role).strip().splitlines()
            assert len(rows) == 1, f"{stem} {where} as {role}: got {rows}"
        # Refused by the grants themselves, not only by the read-only default it could unset.
        for write in (
            "DELETE FROM anomalies", "UPDATE inspections SET state = 'closed'",
            "INSERT INTO anomaly_feedback VALUES (2, 'a1', 'false_positive', 'x', 0)",
            "SELECT count(*) FROM seen_events", "CREATE TABLE grafana_was_here (x int)",
        ):  # fmt: skip
            done = _run_psql(database, "-c", "SET default_transaction_read_only = off",
                             "-c", write, user=role)  # fmt: skip
            assert done.returncode != 0, f"{role} may {write}"
            assert "permission denied" in done.stderr, done.stderr
        done = _run_psql(database, "-c", "DELETE FROM measures", user=role)
        assert "read-only transaction" in done.stderr, done.stderr
        assert _psql(database, "SELECT count(*) FROM anomalies") == "1\n"
    finally:
        _psql(database, f"DROP OWNED BY {role}")
        _psql("postgres", f"DROP ROLE {role}")


@pytest.mark.parametrize("stem", ["quality-overview", "drill-down"])
def test_every_indicator_is_shown_against_its_band(stem: str) -> None:
    exprs = " ".join(e for _, e in promql(load(ROOT / "grafana" / "dashboards" / f"{stem}.json")))
    for indicator in INDICATORS.values():
        assert f"{indicator.metric}{{" in exprs, f"{stem} lacks {indicator.metric}"
        assert f"{band_metric(indicator.metric)}{{" in exprs, f"{stem} lacks its band"
