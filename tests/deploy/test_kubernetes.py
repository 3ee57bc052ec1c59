"""deploy/kubernetes: every manifest valid (kubernetes-validate, strict) against the newest
Kubernetes version the package knows and the oldest the docs support, listed in
kustomization.yaml, hardened as docs/deploy.md says, and sized from the measured RSS."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.support import DEPLOY

K8S = DEPLOY / "kubernetes"
OLDEST_SUPPORTED = "1.30.0"  # docs/deploy.md: preStop `sleep` needs 1.30
# docs/deploy.md, "Sizing": one `vaultctl server` process measured on this project's machine.
MEASURED_STEADY_RSS_MIB = 96
MEASURED_PEAK_RSS_MIB = 140  # while Argon2id (64 MiB) runs at unlock
SECRETS = {"strongroom-keys", "strongroom-database", "strongroom-tls"}


def kustomization() -> dict[str, Any]:
    data = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def manifests() -> dict[str, dict[str, Any]]:
    """Resources by kind/name, from the files kustomization.yaml lists."""
    out: dict[str, dict[str, Any]] = {}
    for name in kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")):
            key = f"{doc['kind']}/{doc['metadata']['name']}"
            assert key not in out, f"two {key}"
            out[key] = doc
    return out


def mebibytes(quantity: str) -> float:
    match = re.fullmatch(r"(\d+)(Mi|Gi)", quantity)
    assert match, quantity
    return int(match.group(1)) * (1024 if match.group(2) == "Gi" else 1)


def test_kustomization_lists_every_manifest() -> None:
    data = kustomization()
    assert data["kind"] == "Kustomization" and data["namespace"] == "strongroom"
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(data["resources"]) == on_disk
    assert [i["name"] for i in data["images"]] == ["strongroom"]


@pytest.mark.parametrize("version", [kubernetes_validate.latest_version(), OLDEST_SUPPORTED])
@pytest.mark.parametrize("name", sorted(kustomization()["resources"]))
def test_manifest_valid(name: str, version: str) -> None:
    for doc in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")):
        kubernetes_validate.validate(doc, version, strict=True)


def test_validation_really_checks() -> None:
    deployment = manifests()["Deployment/strongroom"]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_no_secret_values() -> None:
    kinds = {doc["kind"] for doc in manifests().values()}
    assert "Secret" not in kinds
    text = "\n".join(p.read_text(encoding="utf-8") for p in K8S.glob("*.yaml"))
    assert "VAULT_MASTER_KEY=" not in text and "VAULT_JWT_SECRET" not in text


def test_deployment_hardened_with_probes_and_measured_resources() -> None:
    found = manifests()
    spec = found["Deployment/strongroom"]["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/vault/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/vault/health?ready=1"
    assert container["startupProbe"]["httpGet"]["path"] == "/api/vault/health"
    # Keys as files from Secrets; the database DSN from a Secret; nothing else secret.
    args = container["args"]
    assert "--master-key-file=/run/secrets/strongroom/master-key" in args
    assert "--jwt-secret-file=/run/secrets/strongroom/jwt-secret" in args
    referenced = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    referenced |= {
        e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e
    }
    assert referenced == SECRETS
    # Every $(VAR) in args comes from the ConfigMap.
    config = found["ConfigMap/strongroom-config"]["data"]
    for var in re.findall(r"\$\((\w+)\)", " ".join(args)):
        assert var in config, var
    assert config["STRONGROOM_WORKERS"] == "1"
    # Sized from the measured RSS of one process (workers=1).
    resources = container["resources"]
    assert mebibytes(resources["requests"]["memory"]) >= MEASURED_STEADY_RSS_MIB
    assert mebibytes(resources["limits"]["memory"]) >= 1.5 * MEASURED_PEAK_RSS_MIB
    # The grace period outlasts preStop plus the server's own shutdown timeout.
    shutdown = int(config["STRONGROOM_SHUTDOWN_TIMEOUT"].rstrip("s"))
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > shutdown + pre_stop


def test_selectors_agree() -> None:
    found = manifests()
    pod_labels = found["Deployment/strongroom"]["spec"]["template"]["metadata"]["labels"]
    selectors = [
        found["Deployment/strongroom"]["spec"]["selector"]["matchLabels"],
        found["Service/strongroom"]["spec"]["selector"],
        found["Service/strongroom-pods"]["spec"]["selector"],
        found["PodDisruptionBudget/strongroom"]["spec"]["selector"]["matchLabels"],
        found["NetworkPolicy/strongroom"]["spec"]["podSelector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    assert found["PodDisruptionBudget/strongroom"]["spec"]["minAvailable"] == 1
    assert set(found["NetworkPolicy/strongroom"]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert found["Service/strongroom-pods"]["spec"]["clusterIP"] == "None"
    namespace = found["Namespace/strongroom"]["metadata"]
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
