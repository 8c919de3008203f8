"""deploy/compose.yaml and deploy/Dockerfile: valid against the compose specification's schema
(as vendored by check-jsonschema, no download), secrets that fail loudly, and every image,
port, command, variable and mounted file matching what the code and the repository hold."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from monitor.api.auth import required_role
from monitor.cli import parser
from monitor.settings import Settings
from tests.deploy.ops_files import ROOT, load

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
QUALMON_SERVICES = ("api", "worker-1", "worker-2")


def compose_schema() -> dict[str, Any]:
    # Located without importing check_jsonschema: its CLI is not needed, only its vendored copy.
    spec = importlib.util.find_spec("check_jsonschema")
    assert spec is not None and spec.origin is not None
    path = Path(spec.origin).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    assert errors(load(COMPOSE)) == []


def test_the_schema_check_catches_a_mistake() -> None:
    broken = copy.deepcopy(load(COMPOSE))
    broken["services"]["api"]["healthcheck"]["intervall"] = "15s"
    assert errors(broken)


def test_the_stack_has_every_part() -> None:
    services = load(COMPOSE)["services"]
    assert set(services) == {
        "kafka", "postgres", "api", "worker-1", "worker-2", "prometheus", "alertmanager", "grafana",
        "grafana-store-role",
    }  # fmt: skip
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name, service in services.items():
        # A one-shot job has nothing to report healthy: it runs and exits.
        one_shot = service.get("restart") == "on-failure"
        assert "healthcheck" in service or one_shot, f"{name} has no healthcheck"
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", service["image"]), f"{name}: unpinned image"
        assert not service["image"].endswith(":latest")


def test_secrets_fail_loudly_and_are_never_inline() -> None:
    text = COMPOSE.read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    defaulted = {"QUALMON_PUBLIC_URL"}  # not a secret: a default the environment overrides
    assert used == {"QUALMON_DB_PASSWORD", "QUALMON_SECRETS_DIR", "QUALMON_API_KEYS"} | defaulted
    for var in used - defaulted:
        for match in re.finditer(r"\$\{" + var + r"([^}]*)\}", text):
            assert match.group(1).startswith(":?"), f"${{{var}}} must fail loudly when unset"
    assert not re.search(r"^\s*\w*PASSWORD:", text, re.M), "a password as a plain variable"


def interpolate(value: str, env: dict[str, str]) -> str:
    """What compose makes of ``${VAR:?message}`` and ``${VAR:-default}`` in ``value``.

    >>> interpolate("${A:-x}/${B:?set B}", {"B": "y"})
    'x/y'
    """

    def one(match: re.Match[str]) -> str:
        name, op, word = match.groups()
        if env.get(name):
            return env[name]
        if op == ":?":
            raise ValueError(f"required variable {name} is missing a value: {word}")
        return word

    return re.sub(r"\$\{(\w+)(:[?-])([^}]*)\}", one, value)


def test_the_api_open_to_the_network_authenticates(monkeypatch: pytest.MonkeyPatch) -> None:
    # On 0.0.0.0 without QUALMON_API_KEYS, anyone who reaches port 8000 could acknowledge and
    # silence alerts and close inspections: compose must refuse to start the stack without keys.
    env = load(COMPOSE)["services"]["api"]["environment"]
    assert env["QUALMON_HTTP_HOST"] == "0.0.0.0"
    with pytest.raises(ValueError, match="QUALMON_API_KEYS"):
        interpolate(env["QUALMON_API_KEYS"], {})
    keys = {"ops": {"role": "manager", "key": "k" * 24}}
    given = {"QUALMON_API_KEYS": json.dumps(keys), "QUALMON_DB_PASSWORD": "x"}
    for name, value in env.items():  # as the container's environment, JSON and all
        monkeypatch.setenv(name, interpolate(value, given))
    assert set(Settings().api_keys) == {"ops"}


@pytest.mark.parametrize("given", [None, "https://qualmon.example"])
def test_links_in_alerts_point_where_people_reach_the_api(
    monkeypatch: pytest.MonkeyPatch, given: str | None
) -> None:
    # Unset, QUALMON_PUBLIC_URL falls back to QUALMON_HTTP_HOST: links to http://0.0.0.0:8000.
    # The closing worker sends the alerts, so every qualmon service needs it.
    services = load(COMPOSE)["services"]
    (published,) = services["api"]["ports"]
    env = {"QUALMON_DB_PASSWORD": "x", "QUALMON_API_KEYS": "{}"}
    if given:
        env["QUALMON_PUBLIC_URL"] = given
    for name in QUALMON_SERVICES:
        for variable, value in services[name]["environment"].items():
            monkeypatch.setenv(variable, interpolate(value, env))
        expected = given or f"http://localhost:{published.split(':')[0]}"
        assert Settings().base_url == expected, name


def test_healthchecks_and_scrapes_need_no_key() -> None:
    # With keys on, what the healthcheck and Prometheus call must stay open: they send none.
    services = load(COMPOSE)["services"]
    prometheus = load(DEPLOY / "prometheus" / "prometheus.yml")
    paths = {j.get("metrics_path", "/metrics") for j in prometheus["scrape_configs"]}
    for name in QUALMON_SERVICES:
        (url,) = re.findall(r"http://[^']+", " ".join(services[name]["healthcheck"]["test"]))
        paths.add("/" + url.split("/", 3)[3])
    assert paths == {"/metrics", "/readyz"}
    for path in paths:
        assert required_role("GET", path) is None, path


def test_qualmon_services_match_the_code() -> None:
    services = load(COMPOSE)["services"]
    fields = {f"QUALMON_{name.upper()}" for name in Settings.model_fields}
    commands = set(parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for name in QUALMON_SERVICES:
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        env = service["environment"]
        assert set(env) <= fields, f"{name}: not settings: {set(env) - fields}"
        Settings(**{k.removeprefix("QUALMON_").lower(): v for k, v in env.items()
                    if "${" not in v})  # fmt: skip
        assert service["command"][0] in commands
        assert env["QUALMON_HTTP_PORT"] == "8000" and "EXPOSE 8000" in dockerfile
        assert env["QUALMON_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["QUALMON_DATABASE_URL"].endswith("@postgres:5432/qualmon")
        assert "http://127.0.0.1:8000/readyz" in " ".join(service["healthcheck"]["test"])
    assert services["api"]["command"] == ["api"]
    assert services["worker-1"]["command"] == services["worker-2"]["command"] == ["worker"]
    for source in ("monitor", "streams", "alerting", "pyproject.toml"):
        assert f"COPY {source}" in dockerfile and (ROOT / source).exists()
    assert 'ENTRYPOINT ["qualmon"]' in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored  # keeps the build context small
    assert not {"monitor", "streams", "alerting", "pyproject.toml"} & set(ignored)


def test_qualmon_sends_its_own_alerts_to_the_stacks_alertmanager() -> None:
    # Without it, qualmon's alerts with no Prometheus rule behind them (complaint
    # concentrations, SLA breaches, data quality, overdue measures) reach nobody.
    services = load(COMPOSE)["services"]
    (published,) = services["alertmanager"]["ports"]
    port = published.rsplit(":", 1)[1]
    for name in QUALMON_SERVICES:
        url = services[name]["environment"].get("QUALMON_ALERTMANAGER_URL")
        assert url == f"http://alertmanager:{port}", f"{name}: {url}"


def test_prometheus_scrapes_the_compose_services() -> None:
    prometheus = load(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in prometheus["scrape_configs"]}
    assert jobs["qualmon-api"] == ["api:8000"]
    assert jobs["qualmon-worker"] == [f"{w}:8000" for w in QUALMON_SERVICES[1:]]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]


@pytest.mark.parametrize("service", ["prometheus", "alertmanager", "grafana", "grafana-store-role"])
def test_mounted_files_exist(service: str) -> None:
    for volume in load(COMPOSE)["services"][service]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (DEPLOY / source).exists(), f"{service} mounts missing {source}"


def test_mounts_land_where_the_configs_expect_them() -> None:
    services = load(COMPOSE)["services"]
    prometheus = load(DEPLOY / "prometheus" / "prometheus.yml")
    mounted = {v.split(":")[1] for v in services["prometheus"]["volumes"]}
    for rule_file in prometheus["rule_files"]:
        assert str(Path("/etc/prometheus") / rule_file).startswith(tuple(mounted))
    assert "alertmanager_webhook_token" in services["alertmanager"]["secrets"]
    assert "grafana_db_password" in services["grafana"]["secrets"]
    datasources = (ROOT / "grafana/provisioning/datasources/qualmon.yml").read_text()
    assert "$__file{/run/secrets/grafana_db_password}" in datasources
    for var in re.findall(r"\$\{(\w+)\}", datasources):
        assert var in services["grafana"]["environment"], f"grafana lacks {var}"
    # Grafana's store login is a read-only role of its own, granted once the API has created
    # the tables (the role itself is tested in tests/grafana).
    job = services["grafana-store-role"]
    (mount,) = job["volumes"]
    source, target = mount.split(":")[:2]
    assert (DEPLOY / source).resolve() == DEPLOY / "postgres" / "grafana-reader.sql"
    assert f"-f {target}" in job["command"][0]
    assert set(job["secrets"]) == {"db_password", "grafana_db_password"}
    assert job["depends_on"] == {"api": {"condition": "service_healthy"}}
    secrets = load(COMPOSE)["secrets"]
    assert secrets["grafana_db_password"]["file"] != secrets["db_password"]["file"]
