"""Static checks of the deployment files in ``deploy/``.

The facts every deployment file must agree on live in the constants below, so a change (new
port, new secret, new image tag) is made here once and every file that disagrees fails a test.
Nothing here needs Docker, a cluster or systemd: the files are parsed and cross-checked.
"""

from __future__ import annotations

import configparser
import importlib
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

# --- the facts (one place) ------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"

VERSION = "0.1.0"
IMAGE_NAME = "syncer"
IMAGE = f"{IMAGE_NAME}:{VERSION}"
ENTRYPOINT = ["syncer"]
DAEMON_ARGS = ["run"]
UID = 10001
PORT = 9464
PORT_NAME = "metrics"
# /metrics: loopback on a plain host (systemd), every interface in a container (the image
# sets the variable deploy/config.yaml reads the address from)
METRICS_ENV = "SYNCER_METRICS_ADDRESS"
HOST_METRICS_ADDRESS = f"127.0.0.1:{PORT}"
CONTAINER_METRICS_ADDRESS = f"0.0.0.0:{PORT}"
METRICS_ADDRESS_VALUE = f"${{{METRICS_ENV}:-{HOST_METRICS_ADDRESS}}}"
# exit codes that fail the same way on every start (docs/operations.md): never restarted
NO_RESTART_EXIT_CODES = {"2", "3"}
WHEEL_BUILD = "python3.11 -m pip wheel --no-deps --wheel-dir dist ."
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
CONFIG_DIR = "/etc/syncer"
CONFIG_PATH = f"{CONFIG_DIR}/config.yaml"
GRACE_SECONDS = 60
REPLICAS = 2
SECRET_ENV = (
    "CONTACTHUB_TOKEN",
    "NRS_USERNAME",
    "NRS_API_PASSWORD",
    "OCTOPUSH_LOGIN",
    "OCTOPUSH_API_KEY",
    "NP6_API_KEY",
)
STATE_URL_ENV = "SYNCER_STATE_URL"
ALL_ENV = (*SECRET_ENV, STATE_URL_ENV)
# Config keys that hold credentials: their value must be a whole ${VAR} reference.
SECRET_KEYS = {"token", "username", "api_password", "api_login", "api_key", "password", "url"}
POSTGRES_SERVICE = "postgres"
SYNCER_SERVICE = "syncer"
CONFIGMAP_NAME = "syncer-config"
SECRET_NAME = "syncer-secrets"

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
WHOLE_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")

YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())


# --- helpers --------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yield (key path, leaf value) for every scalar in a YAML tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, str(index)))
    else:
        yield path, node


def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def k8s_object(kind: str) -> dict[str, Any]:
    found = [d for d in k8s_docs() if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def syncer_container() -> dict[str, Any]:
    containers = k8s_object("Deployment")["spec"]["template"]["spec"]["containers"]
    (container,) = (c for c in containers if c["name"] == "syncer")
    assert isinstance(container, dict)
    return container


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, args = full.partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def dockerfile_args(keyword: str) -> list[str]:
    return [args for kw, args in dockerfile_instructions() if kw == keyword]


def dockerfile_label(name: str) -> str | None:
    for args in dockerfile_args("LABEL"):
        for token in shlex.split(args):
            key, sep, value = token.partition("=")
            if sep and key == name:
                return value
    return None


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(DEPLOY / "compose.yaml")
    return data


def env_file_keys(path: Path) -> dict[str, str]:
    keys: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=value: {line!r}"
            keys[key] = value
    return keys


def systemd_unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(DEPLOY / "systemd" / "syncer.service", encoding="utf-8")
    return parser


# --- every YAML file ------------------------------------------------------------------------


def test_deploy_yaml_files_exist() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in YAML_FILES}
    assert {
        "compose.yaml",
        "config.yaml",
        "k8s/configmap.yaml",
        "k8s/secret.yaml",
        "k8s/deployment.yaml",
        "k8s/service.yaml",
        "k8s/kustomization.yaml",
    } <= names


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_yaml_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs, f"{path} is empty"
    assert all(isinstance(d, dict) for d in docs)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_yamllint(path: Path) -> None:
    pytest.importorskip("yamllint", reason="yamllint not installed")
    # Imported by name: yamllint is optional and ships no type information.
    linter = importlib.import_module("yamllint.linter")
    yamllint_config = importlib.import_module("yamllint.config")

    conf = yamllint_config.YamlLintConfig(
        "extends: relaxed\n"
        "rules:\n"
        "  line-length: {max: 120}\n"
        "  indentation: {spaces: 2, indent-sequences: consistent}\n"
        "  trailing-spaces: enable\n"
        "  key-duplicates: enable\n"
    )
    problems = [
        f"{p.line}:{p.column} {p.level} {p.message}"
        for p in linter.run(path.read_text(encoding="utf-8"), conf, str(path))
    ]
    assert not problems, "\n".join(problems)


# --- one image, one version -----------------------------------------------------------------


def test_image_version_matches_package_version() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == IMAGE_NAME
    assert pyproject["project"]["version"] == VERSION
    assert "syncer" in pyproject["project"]["scripts"]


def test_every_file_uses_the_same_image() -> None:
    assert compose()["services"][SYNCER_SERVICE]["image"] == IMAGE
    pod = k8s_object("Deployment")["spec"]["template"]["spec"]
    for container in pod["containers"] + pod.get("initContainers", []):
        assert container["image"] == IMAGE, container["name"]
    version_arg = [a for a in dockerfile_args("ARG") if a.startswith("VERSION=")]
    assert version_arg == [f"VERSION={VERSION}"]
    assert dockerfile_label("org.opencontainers.image.title") == IMAGE_NAME


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    froms = dockerfile_args("FROM")
    assert len(froms) >= 2
    assert any(" AS builder" in f or " as builder" in f for f in froms)
    python_image = [a for a in dockerfile_args("ARG") if a.startswith("PYTHON_IMAGE=")]
    assert python_image == ["PYTHON_IMAGE=python:3.11-slim"]
    copies = dockerfile_args("COPY")
    assert any(c.startswith("--from=builder") for c in copies), "runtime must copy from builder"
    assert any("pyproject.toml" in c for c in copies)
    assert any(c.startswith("syncer/") for c in copies)


def test_dockerfile_runs_as_non_root() -> None:
    users = dockerfile_args("USER")
    assert users, "no USER instruction"
    final_user = users[-1].split(":")[0]
    assert final_user not in {"root", "0"}
    assert final_user == str(UID), "numeric uid lets Kubernetes verify runAsNonRoot"


def test_dockerfile_entrypoint_cmd_port_healthcheck_env() -> None:
    (entrypoint,) = dockerfile_args("ENTRYPOINT")
    assert json.loads(entrypoint) == ENTRYPOINT
    (cmd,) = dockerfile_args("CMD")
    assert json.loads(cmd) == DAEMON_ARGS
    assert str(PORT) in dockerfile_args("EXPOSE")[-1].split()
    (healthcheck,) = dockerfile_args("HEALTHCHECK")
    _, _, check = healthcheck.partition("CMD ")
    assert json.loads(check) == ["syncer", "health"]
    env = " ".join(dockerfile_args("ENV"))
    assert f"SYNCER_CONFIG={CONFIG_PATH}" in env
    assert dockerfile_args("STOPSIGNAL") == ["SIGTERM"]


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv"} <= set(ignored)


# --- docker compose -------------------------------------------------------------------------


def test_compose_services() -> None:
    services = compose()["services"]
    assert {POSTGRES_SERVICE, SYNCER_SERVICE} <= set(services)
    postgres = services[POSTGRES_SERVICE]
    assert postgres["image"].split(":")[0] == "postgres"
    assert postgres["image"].split(":")[1].startswith("16")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["volumes"], "postgres data must be on a volume"


def test_compose_syncer_service() -> None:
    syncer = compose()["services"][SYNCER_SERVICE]
    assert syncer["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / syncer["build"]["context"] / syncer["build"]["dockerfile"]).is_file()
    assert syncer["depends_on"][POSTGRES_SERVICE]["condition"] == "service_healthy"
    assert syncer["restart"] == "unless-stopped"
    assert syncer.get("command", DAEMON_ARGS) == DAEMON_ARGS
    env = syncer["environment"]
    assert env["SYNCER_CONFIG"] == CONFIG_PATH
    url = urlsplit(env[STATE_URL_ENV])
    assert url.scheme == "postgresql+psycopg"
    assert url.hostname == POSTGRES_SERVICE
    assert f"./config.yaml:{CONFIG_PATH}:ro" in syncer["volumes"]
    ports = [str(p) for p in syncer["ports"]]
    assert f"{PORT}:{PORT}" in ports
    assert syncer["stop_grace_period"] == f"{GRACE_SECONDS}s"


def test_compose_state_url_matches_postgres_credentials() -> None:
    services = compose()["services"]
    pg_env = services[POSTGRES_SERVICE]["environment"]
    url = urlsplit(services[SYNCER_SERVICE]["environment"][STATE_URL_ENV])
    assert url.username == pg_env["POSTGRES_USER"]
    assert url.password == pg_env["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == pg_env["POSTGRES_DB"]
    assert url.port in (None, 5432)


def test_compose_is_consistent() -> None:
    """What `docker compose config` would reject, checked without Docker."""
    data = compose()
    services = data["services"]
    declared_volumes = set(data.get("volumes") or {})
    for name, service in services.items():
        assert "image" in service or "build" in service, f"{name}: needs image or build"
        depends = service.get("depends_on", {})
        targets = depends if isinstance(depends, list) else list(depends)
        for target in targets:
            assert target in services, f"{name}: depends_on unknown service {target}"
            assert target != name
        if isinstance(depends, dict):
            for target, spec in depends.items():
                assert spec["condition"] in {
                    "service_started",
                    "service_healthy",
                    "service_completed_successfully",
                }, f"{name} -> {target}"
                if spec["condition"] == "service_healthy":
                    assert "healthcheck" in services[target], f"{target} has no healthcheck"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/", "~")):
                assert (DEPLOY / source).exists(), f"{name}: bind source {source} missing"
            else:
                assert source in declared_volumes, f"{name}: volume {source} not declared"
        for env_file in service.get("env_file", []):
            path = DEPLOY / (env_file if isinstance(env_file, str) else env_file["path"])
            example = path.with_name(path.name + ".example")
            assert path.exists() or example.exists(), f"{name}: no {path.name}(.example)"


def test_compose_migrates_before_the_daemon_starts() -> None:
    services = compose()["services"]
    migrations = [name for name, s in services.items() if s.get("command") == ["db", "upgrade"]]
    assert len(migrations) == 1
    depends = services[SYNCER_SERVICE]["depends_on"]
    assert depends[migrations[0]]["condition"] == "service_completed_successfully"


# --- config.yaml and secrets ----------------------------------------------------------------


def test_config_secrets_are_env_references() -> None:
    config = load_yaml(DEPLOY / "config.yaml")
    referenced: set[str] = set()
    for path, value in walk(config):
        if isinstance(value, str):
            referenced.update(ENV_REF.findall(value))
        if path[-1] in SECRET_KEYS:
            assert isinstance(value, str) and WHOLE_ENV_REF.match(value), (
                f"{'.'.join(path)} must be a ${{VAR}} reference, not a literal"
            )
    assert referenced == set(ALL_ENV)
    assert config["state"]["url"] == f"${{{STATE_URL_ENV}}}"


def test_config_shape() -> None:
    config = load_yaml(DEPLOY / "config.yaml")
    assert config["version"] == 1
    assert config["metrics"]["address"] == METRICS_ADDRESS_VALUE
    assert config["source"]["type"] == "contacthub"
    assert config["source"]["page_size"] <= 4000
    types = {name: t["type"] for name, t in config["targets"].items()}
    assert sorted(types.values()) == ["360nrs", "np6", "octopush"]
    pipelines = config["pipelines"]
    assert len({p["name"] for p in pipelines}) == len(pipelines), "duplicate pipeline names"
    assert {p["target"] for p in pipelines} == set(types), "one pipeline per target at least"


def test_env_example_lists_every_referenced_variable() -> None:
    keys = env_file_keys(DEPLOY / "syncer.env.example")
    assert set(keys) == set(ALL_ENV)


def test_real_env_file_is_git_ignored() -> None:
    assert "syncer.env" in (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()


def test_config_matches_the_config_models() -> None:
    """The pydantic models alone (no loader needed): keys, types, target kinds."""
    models = pytest.importorskip("syncer.config.models", reason="config models not available")
    env = {name: f"dummy-{name.lower()}" for name in SECRET_ENV}
    env[STATE_URL_ENV] = "postgresql+psycopg://syncer:pw@postgres:5432/syncer"

    def expand(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: expand(value) for key, value in node.items()}
        if isinstance(node, list):
            return [expand(value) for value in node]
        if isinstance(node, str):
            return ENV_REF.sub(lambda m: env[m.group(1)], node)
        return node

    raw = load_yaml(DEPLOY / "config.yaml")
    raw["metrics"]["address"] = HOST_METRICS_ADDRESS  # ${VAR:-default}: see the loader test
    config = models.SyncerConfig.model_validate(expand(raw))
    assert config.metrics.address == HOST_METRICS_ADDRESS


def test_config_loads_with_the_config_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    loader = pytest.importorskip("syncer.config.loader", reason="config loader not available")
    load_config = getattr(loader, "load_config", None)
    if load_config is None:
        pytest.skip("config loader not available: no load_config")
    for name in SECRET_ENV:
        monkeypatch.setenv(name, f"dummy-{name.lower()}")
    monkeypatch.setenv(STATE_URL_ENV, "postgresql+psycopg://syncer:pw@postgres:5432/syncer")
    monkeypatch.delenv(METRICS_ENV, raising=False)
    assert load_config(DEPLOY / "config.yaml").metrics.address == HOST_METRICS_ADDRESS
    # the image's environment: every interface, for Prometheus and the kubelet probes
    image_env = dict(
        token.split("=", 1) for args in dockerfile_args("ENV") for token in shlex.split(args)
    )
    assert image_env[METRICS_ENV] == CONTAINER_METRICS_ADDRESS
    monkeypatch.setenv(METRICS_ENV, image_env[METRICS_ENV])
    assert load_config(DEPLOY / "config.yaml").metrics.address == CONTAINER_METRICS_ADDRESS


# --- systemd --------------------------------------------------------------------------------


def test_systemd_unit() -> None:
    unit = systemd_unit()
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    assert service["Type"] == "simple"
    assert service["User"] == "syncer"
    assert service["Restart"] == "on-failure"
    assert service["RestartSec"] == "5"
    assert set(service["RestartPreventExitStatus"].split()) == NO_RESTART_EXIT_CODES
    assert service["TimeoutStopSec"] == str(GRACE_SECONDS)
    assert service["EnvironmentFile"] == f"{CONFIG_DIR}/syncer.env"
    assert service["ExecStart"].endswith("syncer run")
    assert service["ExecStartPre"].endswith("syncer db upgrade")
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/syncer"
    assert service["PrivateTmp"] == "yes"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_keeps_metrics_on_loopback() -> None:
    """No SYNCER_METRICS_ADDRESS in the unit: deploy/config.yaml's loopback default holds."""
    text = (DEPLOY / "systemd" / "syncer.service").read_text(encoding="utf-8")
    active = [line for line in text.splitlines() if not line.startswith("#")]
    assert not any(METRICS_ENV in line for line in active)
    assert METRICS_ENV not in env_file_keys(DEPLOY / "syncer.env.example")


def test_systemd_install_says_how_the_wheel_is_built() -> None:
    """The unit's install notes and deploy/README.md build the wheel the way the Dockerfile's
    builder stage does, and install the file that command writes."""
    wheel = f"dist/syncer-{VERSION}-py3-none-any.whl"
    (builder,) = [a for a in dockerfile_args("RUN") if "pip wheel" in a]
    assert "pip wheel --no-deps" in builder
    unit = (DEPLOY / "systemd" / "syncer.service").read_text(encoding="utf-8")
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for name, text in (("syncer.service", unit), ("README.md", readme)):
        assert WHEEL_BUILD in text, name
        assert f"/opt/syncer/bin/pip install {wheel}" in text, name


def test_systemd_environment_lines() -> None:
    """configparser keeps only the last of repeated keys; read every Environment= line."""
    text = (DEPLOY / "systemd" / "syncer.service").read_text(encoding="utf-8")
    environment = re.findall(r"^Environment=(.+)$", text, flags=re.MULTILINE)
    assert f"SYNCER_CONFIG={CONFIG_PATH}" in environment


# --- Kubernetes -----------------------------------------------------------------------------


def test_k8s_objects_are_well_formed() -> None:
    docs = k8s_docs()
    assert {d["kind"] for d in docs} == {"ConfigMap", "Secret", "Deployment", "Service"}
    for doc in docs:
        assert doc.get("apiVersion"), doc
        assert doc["metadata"]["name"], doc


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_configmap_holds_deploy_config() -> None:
    configmap = k8s_object("ConfigMap")
    assert configmap["metadata"]["name"] == CONFIGMAP_NAME
    file_name = CONFIG_PATH.rsplit("/", 1)[1]
    assert yaml.safe_load(configmap["data"][file_name]) == load_yaml(DEPLOY / "config.yaml"), (
        "k8s/configmap.yaml drifted from deploy/config.yaml"
    )


def test_secret_has_every_referenced_variable() -> None:
    secret = k8s_object("Secret")
    assert secret["metadata"]["name"] == SECRET_NAME
    assert set(secret["stringData"]) == set(ALL_ENV)
    assert urlsplit(secret["stringData"][STATE_URL_ENV]).scheme == "postgresql+psycopg"


def test_deployment_references_configmap_and_secret() -> None:
    deployment = k8s_object("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    configmap_name = k8s_object("ConfigMap")["metadata"]["name"]
    secret_name = k8s_object("Secret")["metadata"]["name"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_volumes = [n for n, v in volumes.items() if "configMap" in v]
    assert [volumes[n]["configMap"]["name"] for n in config_volumes] == [configmap_name]
    for container in pod["containers"] + pod.get("initContainers", []):
        secret_refs = [e["secretRef"]["name"] for e in container["envFrom"]]
        assert secret_refs == [secret_name], container["name"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["SYNCER_CONFIG"] == CONFIG_PATH
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        for mount_name in mounts:
            assert mount_name in volumes, f"{container['name']}: mount of unknown volume"
        (config_mount,) = (mounts[n] for n in config_volumes)
        assert config_mount["mountPath"] == CONFIG_DIR
        assert f"{config_mount['mountPath']}/config.yaml" == CONFIG_PATH
        assert config_mount.get("readOnly") is True


def test_deployment_container() -> None:
    deployment = k8s_object("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == REPLICAS
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == GRACE_SECONDS
    container = syncer_container()
    assert container["args"] == DAEMON_ARGS
    assert "command" not in container, "the image ENTRYPOINT is `syncer`"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    selector = spec["selector"]["matchLabels"]
    labels = spec["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_deployment_migrates_in_an_init_container() -> None:
    pod = k8s_object("Deployment")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["args"] == ["db", "upgrade"]


def test_deployment_explains_why_two_replicas_are_safe() -> None:
    annotations = k8s_object("Deployment")["metadata"]["annotations"]
    text = " ".join(str(v) for v in annotations.values()).lower()
    assert "lease" in text and "postgresql" in text


def test_probes_and_port() -> None:
    container = syncer_container()
    (port,) = container["ports"]
    assert port["containerPort"] == PORT
    assert port["name"] == PORT_NAME
    for probe, path in (("livenessProbe", LIVENESS_PATH), ("readinessProbe", READINESS_PATH)):
        http = container[probe]["httpGet"]
        assert http["path"] == path, probe
        assert http["port"] in {port["name"], port["containerPort"]}, probe


def test_service_targets_the_metrics_port() -> None:
    service = k8s_object("Service")
    container = syncer_container()
    (container_port,) = container["ports"]
    (port,) = service["spec"]["ports"]
    assert port["port"] == PORT
    assert port["targetPort"] in {container_port["name"], container_port["containerPort"]}
    pod_labels = k8s_object("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_security_context() -> None:
    pod = k8s_object("Deployment")["spec"]["template"]["spec"]
    for container in pod["containers"] + pod.get("initContainers", []):
        context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == UID
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        # A read-only root needs a writable /tmp.
        assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_builds() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(result.stdout) if d}
    assert kinds == {"ConfigMap", "Secret", "Deployment", "Service"}
