"""deploy/ is consistent with the code: Docker does not run here, so the files are
parsed and checked for structure, ordering, ports and settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from asif_platform.settings import SETTINGS_HELP

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
README = (ROOT / "README.md").read_text()
SETTINGS = {name for name, _, _ in SETTINGS_HELP}


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def manifests() -> list[dict[str, Any]]:
    found = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in manifests() if doc["kind"] == kind}


def test_compose_has_the_whole_stack() -> None:
    services = compose()["services"]
    assert set(services) == {
        "postgres",
        "qdrant-0",
        "qdrant-1",
        "qdrant-2",
        "migrate",
        "service",
    }
    assert services["migrate"]["command"] == ["asif", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert (
        services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    )
    assert services["migrate"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (
        DEPLOY / services["migrate"]["build"]["context"] / "deploy" / "Dockerfile"
    ).is_file()
    service = services["service"]
    assert (
        service["depends_on"]["migrate"]["condition"]
        == "service_completed_successfully"
    )
    assert {f"qdrant-{i}" for i in range(3)} <= set(service["depends_on"])
    assert service["command"][:2] == ["asif", "serve"]
    port = service["command"][service["command"].index("--port") + 1]
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]


def test_compose_qdrant_is_a_three_node_cluster() -> None:
    services = compose()["services"]
    for index in range(3):
        node = services[f"qdrant-{index}"]
        assert node["environment"]["QDRANT__CLUSTER__ENABLED"] == "true"
        assert node["command"][-2:] == ["--uri", f"http://qdrant-{index}:6335"]
        bootstrap = (
            node["command"][node["command"].index("--bootstrap") + 1] if index else None
        )
        assert bootstrap == (None if index == 0 else "http://qdrant-0:6335")
        assert node["volumes"] == [f"qdrant-{index}:/qdrant/storage"]
    environment = services["service"]["environment"]
    assert environment["ASIF_QDRANT_URL"] == "http://qdrant-0:6333"
    assert int(environment["ASIF_QDRANT_SHARDS"]) == 3
    assert int(environment["ASIF_QDRANT_REPLICATION"]) == 2
    assert environment["ASIF_DATABASE_URL"].startswith("postgresql+psycopg://asif:")
    assert "@postgres:5432/asif" in environment["ASIF_DATABASE_URL"]


def test_every_variable_is_a_setting_and_documented() -> None:
    services = compose()["services"]
    used = set(services["service"]["environment"]) | set(
        services["migrate"]["environment"]
    )
    used |= set(by_kind("ConfigMap")["asif-config"]["data"])
    used |= set(by_kind("Secret")["asif-secrets"]["stringData"])
    assert used <= SETTINGS, used - SETTINGS
    interpolated = set(
        re.findall(r"\$\{([A-Z_]+)", (DEPLOY / "compose.yaml").read_text())
    )
    example = (DEPLOY / "env.example").read_text()
    for name in interpolated:
        assert f"{name}=" in example, name
    for name in interpolated | used:
        assert f"`{name}`" in README, f"document {name} in README.md"


def test_kubernetes_manifests() -> None:
    kinds = {doc["kind"] for doc in manifests()}
    assert {
        "Deployment",
        "Service",
        "Job",
        "Secret",
        "StatefulSet",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Namespace",
    } <= kinds

    qdrant = by_kind("StatefulSet")["qdrant"]
    assert qdrant["spec"]["replicas"] == 3
    node = qdrant["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in node["env"]}
    assert env["QDRANT__CLUSTER__ENABLED"]["value"] == "true"
    assert (
        "--bootstrap" in node["args"][0]
        and qdrant["spec"]["serviceName"] in node["args"][0]
    )

    job = by_kind("Job")["asif-migrate"]["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["asif", "db", "upgrade"]
    assert job["restartPolicy"] == "Never"

    deployment = by_kind("Deployment")["asif-service"]["spec"]["template"]["spec"]
    assert "asif db current" in deployment["initContainers"][0]["args"][0]
    container = deployment["containers"][0]
    port = container["command"][container["command"].index("--port") + 1]
    assert container["ports"][0]["containerPort"] == int(port)
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/health"
    service = by_kind("Service")["asif-service"]["spec"]
    assert service["ports"][0]["targetPort"] == container["ports"][0]["name"]
    sources = {ref["name"] for item in container["envFrom"] for ref in item.values()}
    assert sources == {"asif-config", "asif-secrets"}


def test_kustomization_lists_existing_files_and_no_secret() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (DEPLOY / "k8s" / resource).is_file(), resource
    assert "secret.example.yaml" not in kustomization["resources"]


def test_dockerfile() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    assert re.search(r"^USER 10001$", text, re.M)
    assert re.search(r"^EXPOSE 8000$", text, re.M)
    assert '"asif", "serve"' in text and "HEALTHCHECK" in text
    for name in re.findall(r"\b(ASIF_[A-Z_]+)=", text):
        assert name in SETTINGS, name
