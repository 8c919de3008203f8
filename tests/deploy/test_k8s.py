"""deploy/k8s: valid (strict) for kubernetes-validate, probes on /healthz and /readyz, and
settings that qualmon knows."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from monitor.api.auth import required_role
from monitor.settings import Settings
from tests.deploy.ops_files import ROOT

MANIFESTS = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))


def documents() -> list[dict]:
    return [d for p in MANIFESTS for d in yaml.safe_load_all(p.read_text()) if d]


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_manifest_is_valid_kubernetes(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, "1.30.0", strict=True)


def test_validation_catches_a_mistake() -> None:
    deployment = next(d for d in documents() if d["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.30.0", strict=True)


def test_deployments_probe_run_and_configure_qualmon() -> None:
    config = next(d for d in documents() if d["kind"] == "ConfigMap")
    fields = {f"QUALMON_{name.upper()}" for name in Settings.model_fields}
    assert set(config["data"]) <= fields
    Settings(**{k.removeprefix("QUALMON_").lower(): v for k, v in config["data"].items()})
    deployments = {d["metadata"]["name"]: d for d in documents() if d["kind"] == "Deployment"}
    assert set(deployments) == {"qualmon-api", "qualmon-worker"}
    # Workers scale out (docs/operations.md), and a rolling update never leaves none running.
    worker = deployments["qualmon-worker"]["spec"]
    assert worker["replicas"] == 2
    assert worker["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    for name, deployment in deployments.items():
        # deploy/prometheus/prometheus.yml tells how to discover pods by these labels.
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels == {
            "app.kubernetes.io/name": "qualmon",
            "app.kubernetes.io/component": name.removeprefix("qualmon-"),
        }
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [name.removeprefix("qualmon-")]
        assert container["ports"] == [{"name": "http", "containerPort": 8000}]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
        for secret in container["env"]:
            assert secret["name"] in fields
            assert secret["valueFrom"]["secretKeyRef"]["name"] == "qualmon-secrets"


def test_links_in_alerts_do_not_name_the_listening_address() -> None:
    # Unset, QUALMON_PUBLIC_URL falls back to QUALMON_HTTP_HOST: links to http://0.0.0.0:8000.
    config = next(d for d in documents() if d["kind"] == "ConfigMap")
    settings = Settings(
        **{k.removeprefix("QUALMON_").lower(): v for k, v in config["data"].items()}
    )
    assert urlsplit(settings.base_url).hostname not in ("0.0.0.0", "127.0.0.1", "localhost")
    assert settings.base_url == config["data"]["QUALMON_PUBLIC_URL"]


def test_the_api_authenticates_with_keys_from_the_secret() -> None:
    # The API listens on every interface of its pod: without QUALMON_API_KEYS anyone who
    # reaches the Service could acknowledge and silence alerts and close inspections.
    config = next(d for d in documents() if d["kind"] == "ConfigMap")
    assert config["data"]["QUALMON_HTTP_HOST"] == "0.0.0.0"
    assert "QUALMON_API_KEYS" not in config["data"]  # a secret, never in a ConfigMap
    api = next(d for d in documents() if d["metadata"]["name"] == "qualmon-api"
               and d["kind"] == "Deployment")  # fmt: skip
    (container,) = api["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    # Not optional: a missing key keeps the pod from starting instead of running it open.
    assert env["QUALMON_API_KEYS"] == {"name": "qualmon-secrets", "key": "api-keys"}
    # Kubelet probes send no key: they must stay open.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert required_role("GET", container[probe]["httpGet"]["path"]) is None
