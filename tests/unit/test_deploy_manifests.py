"""deploy/: the Kubernetes manifests validate against the Kubernetes JSON schemas (strict: no
unknown fields), offline, with kubernetes-validate (the schemas ship inside the package); the
generated Secret too; the compose file validates against the Compose Specification's schema
(a copy in tests/fixtures/compose-spec/) and holds no secret of its own."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys

import jsonschema
import kubernetes_validate
import pytest
import yaml

from support import PAYLOADS, ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes version still supported upstream when this was written; the manifests
# use nothing newer (policy/v1 PodDisruptionBudget, batch/v1 Job ttlSecondsAfterFinished).
KUBERNETES_VERSION = "1.31.0"
SETTING = re.compile(r"^(?:ALLIANCE|GUNICORN|PROMETHEUS)_[A-Z_]+$")


def manifests() -> list[dict]:
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def by_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in manifests() if doc["kind"] == kind}


def validate(doc: dict) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def generated_secret() -> dict:
    env = {"ALLIANCE_DATABASE_URL": "postgresql+psycopg://alliance:pw@db/alliance",
           "ALLIANCE_BROKER_URL": "amqp://u:p@mq-0//;amqp://u:p@mq-1//;amqp://u:p@mq-2//",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, ROOT / "deploy" / "new_secrets.py", "kubernetes"],
                          env=env, capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_valid_kubernetes(doc):
    validate(doc)


def test_the_validator_rejects_what_kubernetes_would():
    """If this passed with broken manifests, the test above would prove nothing."""
    web = by_kind("Deployment")["alliance-web"]
    misspelt = copy.deepcopy(web)
    container = misspelt["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGett"] = container["readinessProbe"].pop("httpGet")
    wrong_type = copy.deepcopy(web)
    wrong_type["spec"]["replicas"] = "two"
    for broken in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            validate(broken)


def test_the_stack_has_what_production_needs():
    assert set(by_kind("Deployment")) == {"alliance-web", "alliance-worker"}
    assert set(by_kind("PodDisruptionBudget")) == {"alliance-web", "alliance-worker"}
    job = by_kind("Job")["alliance-migrate"]
    migrate = job["spec"]["template"]["spec"]["containers"][0]
    assert migrate["command"] == ["alliance", "db", "upgrade"]
    web = by_kind("Deployment")["alliance-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    worker = by_kind("Deployment")["alliance-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["command"][:2] == ["alliance", "worker"]


def test_budgets_and_services_select_the_pods_they_mean():
    deployments = by_kind("Deployment")
    for name, budget in by_kind("PodDisruptionBudget").items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = by_kind("Service")["alliance-web"]
    assert service["spec"]["selector"].items() <= \
        deployments["alliance-web"]["spec"]["template"]["metadata"]["labels"].items()


def test_pods_read_the_settings_and_the_secret_and_nothing_secret_is_committed():
    settings = by_kind("ConfigMap")["alliance-settings"]["data"]
    documented = set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / "deploy" / "env.example").read_text(),
                                re.MULTILINE))
    assert all(SETTING.match(key) for key in settings)
    assert set(settings) - {"GUNICORN_WORKERS", "PROMETHEUS_MULTIPROC_DIR"} <= documented
    secret = {"ALLIANCE_SECRET_KEY", "ALLIANCE_DATABASE_URL", "ALLIANCE_BROKER_URL"}
    assert not secret & set(settings)
    assert by_kind("Secret") == {}, "Secrets are generated (deploy/new_secrets.py), not committed"
    pods = [doc["spec"]["template"]["spec"] for doc in manifests()
            if doc["kind"] in ("Deployment", "Job")]
    for pod in pods:
        sources = pod["containers"][0]["envFrom"]
        assert {"configMapRef": {"name": "alliance-settings"}} in sources
        assert {"secretRef": {"name": "alliance-secrets"}} in sources
        assert pod["securityContext"]["runAsNonRoot"] is True


def test_the_generated_secret_is_valid_and_new_every_time():
    first, second = generated_secret(), generated_secret()
    validate(first)
    assert first["metadata"]["name"] == "alliance-secrets"
    assert set(first["stringData"]) == {"ALLIANCE_SECRET_KEY", "ALLIANCE_DATABASE_URL",
                                        "ALLIANCE_BROKER_URL"}
    assert len(first["stringData"]["ALLIANCE_SECRET_KEY"]) >= 64
    assert first["stringData"]["ALLIANCE_SECRET_KEY"] != second["stringData"]["ALLIANCE_SECRET_KEY"]


def test_the_secret_is_not_made_without_the_urls_that_hold_passwords():
    done = subprocess.run([sys.executable, ROOT / "deploy" / "new_secrets.py", "kubernetes"],
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "ALLIANCE_DATABASE_URL and ALLIANCE_BROKER_URL" in done.stderr


def test_compose_secrets_are_generated_once_and_kept(tmp_path):
    target = tmp_path / ".env"
    script = [sys.executable, ROOT / "deploy" / "new_secrets.py", "compose", "--env-file", target]
    subprocess.run(script, capture_output=True, timeout=30, check=True)
    written = target.read_text()
    again = subprocess.run(script, capture_output=True, text=True, timeout=30)
    assert again.returncode != 0 and "keeping it" in again.stderr
    assert target.read_text() == written and target.stat().st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in written.splitlines() if "=" in line)
    assert set(values) == {"ALLIANCE_SECRET_KEY", "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD",
                           "RABBITMQ_ERLANG_COOKIE"}


def test_the_compose_file_follows_the_compose_specification():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    schema = json.loads((PAYLOADS / "compose-spec" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(compose)


def test_compose_runs_three_rabbitmq_nodes_and_shares_no_placeholder_secret():
    text = (ROOT / "deploy" / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    nodes = [name for name in compose["services"] if name.startswith("rabbitmq-")]
    assert len(nodes) == 3
    assert "change-me" not in text and "env.example" not in text
    for variable in ("ALLIANCE_SECRET_KEY", "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD",
                     "RABBITMQ_ERLANG_COOKIE"):
        assert f"${{{variable}:?" in text, f"{variable} must come from deploy/.env, required"
    app = compose["x-alliance-env"]
    assert app["ALLIANCE_RABBITMQ_QUEUE_TYPE"] == "quorum"
    assert app["ALLIANCE_BROKER_URL"].count(";") == 2
