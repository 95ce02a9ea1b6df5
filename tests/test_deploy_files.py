"""The container image, compose.yaml and deploy/k8s/, checked without Docker or a cluster:
against the Compose specification and the Kubernetes API schemas (offline, bundled by the
validator packages), and for the properties the deployment promises (docs/operations.md)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose
from kubernetes_validate import utils as kubernetes

from loot.membership import Membership, parse_membership
from loot.thumbprint_list import parse_thumbprints
from tests.compose_file import COMPOSE, ROOT, MissingVariable, environment, load

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSIONS = ["1.29.0", "1.37.0"]  # the oldest we document, and the newest the validator bundles
SECRET = {"LOOT_CLUSTER_SECRET": "a-test-secret-of-enough-length"}


# --- compose.yaml -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(SECRET)


def validate_compose(document: dict[str, Any]) -> None:
    parsed = PyCompose.from_json(json.dumps(document))  # strict: unknown keys and bad values are errors
    parsed.validate()  # references between services, volumes and networks
    parsed.to_spec()  # the models generated from the Compose specification's JSON schema


def test_compose_file_follows_the_compose_specification(compose) -> None:
    validate_compose(compose)


@pytest.mark.parametrize("mistake", [
    lambda doc: doc["services"]["router"].update(restrat="always"),
    lambda doc: doc["services"]["shard-0"]["healthcheck"].update(interval="often"),
    lambda doc: doc["services"]["shard-1"].update(ports=[{"target": "seventy"}]),
])
def test_the_compose_validator_catches_mistakes(compose, mistake) -> None:
    document = json.loads(json.dumps(compose))
    mistake(document)
    with pytest.raises(ValueError):
        validate_compose(document)


def test_compose_refuses_to_start_without_the_cluster_secret() -> None:
    with pytest.raises(MissingVariable, match="LOOT_CLUSTER_SECRET"):
        load({})


def test_compose_passes_a_rotation_secret_to_every_node_only_when_set() -> None:
    other = "the-other-secret-of-a-rotation"
    rotating = load({**SECRET, "LOOT_CLUSTER_SECRET_ROTATING": other})["services"]
    assert {environment(service)["LOOT_CLUSTER_SECRET_ROTATING"] for service in rotating.values()} == {other}
    steady = load(SECRET)["services"]
    assert {environment(service)["LOOT_CLUSTER_SECRET_ROTATING"] for service in steady.values()} == {""}


def compose_membership(compose: dict[str, Any]) -> Membership:
    """The membership file every compose service reads: LOOT_MEMBERSHIP inside a mounted host directory."""
    paths = {environment(service)["LOOT_MEMBERSHIP"] for service in compose["services"].values()}
    assert len(paths) == 1
    inside = Path(paths.pop())
    hosts = set()
    for name, service in compose["services"].items():
        mounts = [mount.split(":") for mount in service["volumes"]]
        host = next(host for host, target, *options in mounts if target == str(inside.parent) and options == ["ro"])
        assert host.startswith("./"), f"{name} mounts the membership's directory (a directory: a rewritten file is seen)"
        hosts.add(host)
    assert len(hosts) == 1
    return parse_membership((ROOT / host / inside.name).read_text())


def test_compose_lists_membership_once_and_every_node_gets_it(compose) -> None:
    text = COMPOSE.read_text()
    for key in ("LOOT_MEMBERSHIP", "LOOT_CLUSTER_SECRET"):
        assert len(re.findall(rf"^\s*{key}:", text, re.MULTILINE)) == 1, f"{key} is written once"
    assert "LOOT_SHARDS" not in text, "a fixed list cannot change epoch: scaling needs the file"
    members = compose_membership(compose).shards
    shards = {name for name, service in compose["services"].items() if service["command"] == ["shard"]}
    assert set(members) == shards and len(shards) == 3
    for name in shards:
        assert environment(compose["services"][name])["LOOT_NAME"] == name
        assert members[name] == f"{name}:7070", "a shard is reached by its service name on the image's port"


def test_compose_services_are_healthchecked_restarted_and_shards_have_their_own_volume(compose) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert service["healthcheck"]["test"] == ["CMD", "loot", "health"], name
        assert service["restart"] in ("always", "unless-stopped"), name
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
    volumes = {name: [mount for mount in service["volumes"] if not mount.startswith("./")]
               for name, service in services.items()}
    assert volumes["router"] == []
    shard_volumes = [volumes[name] for name in services if name.startswith("shard-")]
    assert all(len(mounts) == 1 and mounts[0].endswith(":/data") for mounts in shard_volumes)
    named = {mounts[0].split(":")[0] for mounts in shard_volumes}
    assert len(named) == len(shard_volumes) and named <= set(compose["volumes"])
    assert "7070:7070" in services["router"]["ports"]
    shards = [service for name, service in services.items() if name != "router"]
    assert all(service["ports"] == [f"708{i + 1}:7080"] for i, service in enumerate(shards)), \
        "a shard publishes its public port only, never the internal one"
    assert all(environment(service)["LOOT_PUBLIC_PORT"] == "7080" for service in shards)
    public = compose_membership(compose).public
    assert public == {name: f"localhost:708{i + 1}" for i, name in enumerate(sorted(public))} and len(public) == 3
    assert set(services["router"]["depends_on"]) == {name for name in services if name != "router"}


# --- Dockerfile -------------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = (line.strip() for line in text.splitlines())
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_image_runs_either_role_as_non_root_with_a_health_probe_and_no_secret() -> None:
    instructions = dockerfile_instructions()
    final_stage = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM"):]
    ops = dict(final_stage)
    assert json.loads(ops["ENTRYPOINT"]) == ["loot"]
    assert ops["USER"].split(":")[0] not in ("0", "root")
    assert ops["HEALTHCHECK"].endswith('CMD ["loot", "health"]')
    env = ops["ENV"]
    assert "LOOT_PORT=7070" in env and "LOOT_HOST=0.0.0.0" in env and "LOOT_DATA=/data" in env
    assert not any("SECRET" in arguments.upper() for _, arguments in instructions)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"loot-data", ".env", "*.env", ".venv", ".git"} <= set(ignored), "data, secrets and keys stay out of the build"


@pytest.mark.cluster  # runs git
def test_git_ignores_the_secret_files_the_docs_tell_people_to_create() -> None:
    for path in (".env", "deploy/k8s/cluster-secret.env"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert ignored.returncode == 0, f"{path} must be git-ignored"


# --- deploy/k8s -------------------------------------------------------------------------------

def manifests() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, document) for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
            for document in yaml.safe_load_all(path.read_text()) if document]


def find(kind: str, name: str) -> dict[str, Any]:
    return next(doc for _, doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_follow_the_kubernetes_schemas(version: str) -> None:
    documents = manifests()
    assert len(documents) >= 9
    for file, document in documents:
        kubernetes.validate(document, version, strict=True)


def test_the_kubernetes_validator_catches_mistakes() -> None:
    deployment = find("Deployment", "router")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProb"] = {"grpc": {"port": 7070}}
    with pytest.raises(Exception, match="readinessProb"):
        kubernetes.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_applies_every_manifest_and_generates_the_secret() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    generated = kustomization["secretGenerator"][0]
    assert generated["name"] == "loot-cluster" and generated["envs"] == ["cluster-secret.env"]
    assert not any(doc["kind"] == "Secret" for _, doc in manifests()), "no secret value is committed"


def kubernetes_membership() -> Membership:
    return parse_membership(find("ConfigMap", "loot-membership")["data"]["membership.json"])


def test_shards_are_a_statefulset_whose_pod_names_are_the_ring_names() -> None:
    statefulset = find("StatefulSet", "shard")
    members = kubernetes_membership().shards
    service = statefulset["spec"]["serviceName"]
    names = [f"{statefulset['metadata']['name']}-{i}" for i in range(statefulset["spec"]["replicas"])]
    assert list(members) == names
    assert all(address == f"{name}.{service}:7070" for name, address in members.items())
    headless = find("Service", service)
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == statefulset["spec"]["selector"]["matchLabels"]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["shard"]
    assert {"name": "LOOT_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in container["volumeMounts"]


def test_routers_are_a_deployment_behind_a_service() -> None:
    deployment = find("Deployment", "router")
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == ["router"]
    service = find("Service", "loot")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert [port["port"] for port in service["spec"]["ports"]] == [7070]


def workloads() -> list[dict[str, Any]]:
    return [find("StatefulSet", "shard"), find("Deployment", "router")]


def prestop_pause(container: dict[str, Any]) -> int:
    """Seconds a `sleep N` preStop hook delays SIGTERM."""
    command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    return int(command[1]) if command else 0


def test_every_container_is_probed_bounded_non_root_and_gets_membership_and_secret() -> None:
    for workload in workloads():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        pause = max(prestop_pause(container) for container in pod["containers"])
        assert pod["terminationGracePeriodSeconds"] > pause + 10, "SIGKILL only after the 10 s shutdown grace"
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                assert container[probe]["grpc"]["port"] == 7070, (workload["metadata"]["name"], probe)
            assert set(container["resources"]["requests"]) == set(container["resources"]["limits"]) == {"cpu", "memory"}
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert {"secretRef": {"name": "loot-cluster"}} in container["envFrom"]
            assert_mounted_config_file(pod, container, "LOOT_MEMBERSHIP", "loot-membership")


def assert_mounted_config_file(pod: dict[str, Any], container: dict[str, Any], variable: str, config_map: str) -> str:
    """A mounted ConfigMap, not environment and not subPath: only then do running pods see a change.
    Returns the file's content."""
    path = Path(next(item["value"] for item in container["env"] if item["name"] == variable))
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mount = next(mount for mount in container["volumeMounts"] if mount["mountPath"] == str(path.parent))
    assert "subPath" not in mount and mount["readOnly"] is True
    assert volumes[mount["name"]]["configMap"]["name"] == config_map
    return find("ConfigMap", config_map)["data"][path.name]


def test_routers_serve_only_the_listed_accounts_in_compose_and_kubernetes(compose) -> None:
    """Both publish the router beyond loopback, so both give it an accounts file it reloads; neither is open."""
    router = compose["services"]["router"]
    inside = Path(environment(router)["LOOT_ACCOUNTS_FILE"])
    host = next(host for host, target, *options in (mount.split(":") for mount in router["volumes"])
                if target == str(inside.parent) and options == ["ro"])
    assert parse_thumbprints((ROOT / host / inside.name).read_text(), "compose") == frozenset()
    pod = find("Deployment", "router")["spec"]["template"]["spec"]
    listed = assert_mounted_config_file(pod, pod["containers"][0], "LOOT_ACCOUNTS_FILE", "loot-accounts")
    assert parse_thumbprints(listed, "kubernetes") == frozenset()
    assert "OPEN_ACCOUNTS" not in COMPOSE.read_text() + "".join(path.read_text() for path in K8S.glob("*.yaml"))


def test_network_policy_lets_only_routers_and_shards_reach_the_shards_internal_port() -> None:
    policy = find("NetworkPolicy", "shard-ingress")
    shard_labels = find("StatefulSet", "shard")["spec"]["template"]["metadata"]["labels"]
    router_labels = find("Deployment", "router")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"] == shard_labels
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    grpc_rules = [rule for rule in policy["spec"]["ingress"] if {"port": "grpc"} in rule["ports"]]
    assert len(grpc_rules) == 1 and grpc_rules[0]["from"] == [{"podSelector": {"matchLabels": router_labels}},
                                                              {"podSelector": {"matchLabels": shard_labels}}]
    others = [rule for rule in policy["spec"]["ingress"] if rule not in grpc_rules]
    assert others == [{"ports": [{"port": "public"}]},  # clients: the public API, from anywhere
                      {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name":
                                                                                           "prometheus"}}}],
                       "ports": [{"port": "metrics"}]}]


def test_shards_serve_the_public_api_on_a_port_of_their_own_for_the_listed_accounts() -> None:
    statefulset = find("StatefulSet", "shard")
    pod = statefulset["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["public"] == int(env["LOOT_PUBLIC_PORT"]) != ports["grpc"]
    assert parse_thumbprints(assert_mounted_config_file(pod, container, "LOOT_ACCOUNTS_FILE", "loot-accounts"),
                             "kubernetes") == frozenset()
    headless = find("Service", statefulset["spec"]["serviceName"])
    assert {"name": "public", "port": ports["public"], "targetPort": "public"} in headless["spec"]["ports"]
    public = kubernetes_membership().public
    assert public == {name: f"{name}.{headless['metadata']['name']}.loot:{ports['public']}"
                      for name in kubernetes_membership().shards}


def test_disruption_budgets_cover_shards_and_routers() -> None:
    for workload in workloads():
        budget = find("PodDisruptionBudget", workload["metadata"]["name"])
        assert budget["spec"]["selector"] == workload["spec"]["selector"]
    assert find("PodDisruptionBudget", "shard")["spec"]["maxUnavailable"] == 1


def test_compose_and_kubernetes_name_the_same_shards(compose) -> None:
    in_compose = compose_membership(compose).shards
    in_kubernetes = kubernetes_membership().shards
    assert list(in_compose) == list(in_kubernetes)
    assert re.fullmatch(r"[a-z0-9-]+", "".join(in_compose))
