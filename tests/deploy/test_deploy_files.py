"""The deploy files (Dockerfile, docker-compose.yml, deploy/k8s) agree with the code they run.

No Docker, Kubernetes or network: the files are parsed and checked against the ``piazza`` CLI's commands,
the registry's service names and the environment names the settings classes read, so renaming a command,
a service or a setting fails here rather than in a rollout.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import typer
import typer.core
import yaml
from cryptography.fernet import Fernet
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from piazza.cli import app
from piazza.registry import WEB_COMPONENTS, WORKERS, load_component, service_settings
from shared.config import PiazzaSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"
K8S_DIR = ROOT / "deploy" / "k8s"

PIAZZA_IMAGE = "piazza"
"""The repository name of the image the Dockerfile builds, as the manifests spell it."""

SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (PiazzaSettings, *service_settings())

NON_SETTINGS_ENV = frozenset({"PROMETHEUS_MULTIPROC_DIR"})
"""Read by the code outside the settings classes (shared/http/app.py)."""

PYTHON_RUNTIME_ENV = frozenset({"PATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"})
"""What the Dockerfile may set for Python itself rather than for Piazza."""

DEPLOYED_COMMANDS = frozenset({"migrate", "serve", "worker"})
"""The production commands; ``run`` (embedded NATS, SQLite) is for laptops only."""

SERVICE_ARGUMENTS: dict[str, tuple[str, frozenset[str]]] = {
    "serve": ("services", frozenset(WEB_COMPONENTS)),
    "worker": ("name", frozenset(WORKERS)),
}
"""Per command: the argument naming services, and the names the registry knows."""

POD_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job"})

PUBLIC_ROUTES: dict[str, str] = {
    "/webhooks": "ingress",
    "/v1/analytics": "analytics-api",
    "/v1/alerts": "analytics-api",
    "/v1/reports": "analytics-api",
    "/v1": "inbox-api",
    "/docs": "inbox-api",
    "/openapi.json": "inbox-api",
}
"""The paths the Ingress routes, and the web component that must serve each."""

SERVICE_DEPENDENCIES: dict[str, dict[str, str]] = {"analytics-api": {"inbox-api": "service_started"}}
"""Compose services that call another Piazza service (beyond the migrations and the backends): the
analytics API asks the inbox API who a bearer token belongs to (GET /v1/me)."""

INBOX_URL_ENV = "PIAZZA_ANALYTICS_INBOX_URL"
"""Where the analytics API reaches the inbox API (services/analytics/config.py)."""

REPORT_FOLDER_ENV = "PIAZZA_ANALYTICS_REPORT_FOLDER"
"""Where the analytics worker writes scheduled reports; unset: ``<PIAZZA_DATA_DIR>/reports``."""

Manifest = dict[str, Any]


# --- reading the files --------------------------------------------------------------------------------


@cache
def compose() -> Manifest:
    """docker-compose.yml (YAML merge keys and anchors resolved by the loader)."""
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def k8s_files() -> list[Path]:
    """Every YAML file under deploy/k8s."""
    return sorted([*K8S_DIR.glob("*.yaml"), *K8S_DIR.glob("*.yml")])


@cache
def k8s_documents() -> tuple[Manifest, ...]:
    """Every Kubernetes object in deploy/k8s, the Kustomization excepted."""
    documents = [
        document
        for path in k8s_files()
        for document in yaml.safe_load_all(path.read_text())
        if document is not None
    ]
    return tuple(d for d in documents if d.get("kind") != "Kustomization")


def k8s_objects(kind: str) -> dict[str, Manifest]:
    """The Kubernetes objects of one kind, by name."""
    return {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == kind}


@dataclass(frozen=True)
class DockerInstruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    value: str
    stage: int


@cache
def dockerfile() -> tuple[DockerInstruction, ...]:
    """The Dockerfile's instructions; ``stage`` counts FROM lines (0 before the first)."""
    instructions: list[DockerInstruction] = []
    pending = ""
    stage = 0
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines, even inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, value = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(DockerInstruction(keyword.upper(), value.strip(), stage))
    return tuple(instructions)


def final_stage(keyword: str) -> list[str]:
    """The values of one instruction in the image's (last) stage."""
    last = max(i.stage for i in dockerfile())
    return [i.value for i in dockerfile() if i.keyword == keyword and i.stage == last]


def dockerfile_cmd() -> list[str]:
    """The image's default command (the arguments given to the entrypoint)."""
    (cmd,) = final_stage("CMD")
    parsed = json.loads(cmd)
    assert isinstance(parsed, list)
    return [str(arg) for arg in parsed]


# --- what the code reads and accepts ------------------------------------------------------------------


def settings_env_names(settings: type[BaseSettings]) -> set[str]:
    """The environment names a settings class reads: its aliases, else env_prefix + field name."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, info in settings.model_fields.items():
        alias = info.validation_alias or info.alias
        if isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def cli_root() -> typer.core.TyperGroup:
    """The ``piazza`` command as Click sees it."""
    root = typer.main.get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    return root


def cli_env_names() -> set[str]:
    """Environment names that ``piazza`` options read (``envvar=``), e.g. PIAZZA_PORT."""
    names: set[str] = set()
    pending: list[Any] = [cli_root()]
    while pending:
        command = pending.pop()
        pending.extend(getattr(command, "commands", {}).values())
        for param in command.params:
            if isinstance(param, typer.core.TyperOption) and param.envvar:
                envvar = param.envvar
                names.update([envvar] if isinstance(envvar, str) else envvar)
    return names


@cache
def known_env_names() -> frozenset[str]:
    """Every environment name Piazza reads."""
    from_settings = {name for cls in SETTINGS_CLASSES for name in settings_env_names(cls)}
    return frozenset(from_settings | cli_env_names() | NON_SETTINGS_ENV)


@dataclass(frozen=True)
class ParsedCommand:
    """A ``piazza`` command line as the CLI parses it."""

    path: tuple[str, ...]
    params: dict[str, Any]
    explicit: frozenset[str]

    @property
    def port(self) -> int | None:
        """The port a server listens on; None for commands that do not serve."""
        port = self.params.get("port")
        return int(port) if port is not None else None


def parse_command(argv: list[str]) -> ParsedCommand:
    """Parse ``piazza ARGV`` with the real CLI (unknown commands, options or arguments raise)."""
    command: Any = cli_root()
    path: list[str] = []
    rest = list(argv)
    while isinstance(command, typer.core.TyperGroup):
        if not rest or rest[0] not in command.commands:
            raise ValueError(f"{' '.join(['piazza', *path])}: no subcommand {rest[:1]}")
        path.append(rest.pop(0))
        command = command.commands[path[-1]]
    try:
        context = command.make_context(" ".join(path), rest)
    except typer.TyperException as exc:
        raise ValueError(f"piazza {' '.join(argv)}: {exc}") from None
    explicit = {name for name in context.params if context.get_parameter_source(name).name == "COMMANDLINE"}
    return ParsedCommand(tuple(path), dict(context.params), frozenset(explicit))


def command_problems(argv: list[str]) -> list[str]:
    """Why ``piazza ARGV`` is not a deployable command with real service names (empty: it is)."""
    try:
        parsed = parse_command(argv)
    except ValueError as exc:
        return [str(exc)]
    name = parsed.path[0]
    if name not in DEPLOYED_COMMANDS:
        return [f"`piazza {name}` is not a production command ({sorted(DEPLOYED_COMMANDS)})"]
    problems = []
    if name in SERVICE_ARGUMENTS:
        argument, known = SERVICE_ARGUMENTS[name]
        given = parsed.params[argument]
        unknown = sorted(set([given] if isinstance(given, str) else given) - known)
        if unknown:
            problems.append(f"unknown service(s) {unknown} for `piazza {name}`; known: {sorted(known)}")
    if parsed.port is not None and "port" not in parsed.explicit:
        problems.append(f"`piazza {name}` must give --port: the probes depend on it")
    if parsed.port is not None and parsed.params.get("host") != "0.0.0.0":
        problems.append(f"`piazza {name}` must listen on --host 0.0.0.0 to be reachable in a container")
    return problems


# --- the Piazza containers of docker-compose.yml and deploy/k8s ---------------------------------------


@dataclass
class Container:
    """A Piazza container as deployed: its command, environment and the ports it opens and is probed on."""

    where: str
    argv: list[str]
    env: dict[str, str]
    ports: set[int] = field(default_factory=set)
    probed_ports: list[int] = field(default_factory=list)
    probe_paths: dict[str, str] = field(default_factory=dict)
    pod_labels: dict[str, str] = field(default_factory=dict)
    writable_mounts: dict[str, str] = field(default_factory=dict)
    """Mount path -> what is mounted there (a volume's name, or tmpfs), for the writable mounts."""


def image_name(image: str) -> str:
    """``registry.example.com/team/piazza:1.0`` -> ``piazza``."""
    return image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]


def urls_ports(text: str) -> list[int]:
    """Ports of the local URLs in a health check command."""
    return [int(port) for port in re.findall(r"https?://(?:127\.0\.0\.1|localhost):(\d+)", text)]


def compose_piazza_services() -> dict[str, Manifest]:
    """The compose services that run the image built from this repository."""
    return {name: svc for name, svc in compose()["services"].items() if "build" in svc}


def compose_containers() -> list[Container]:
    """docker-compose.yml's Piazza services as containers."""
    containers = []
    for name, svc in compose_piazza_services().items():
        command = svc.get("command", dockerfile_cmd())
        environment = svc.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        container = Container(
            where=f"docker-compose.yml service {name}",
            argv=shlex.split(command) if isinstance(command, str) else [str(a) for a in command],
            env={str(k): str(v) for k, v in environment.items()},
        )
        for published in svc.get("ports", []):
            container.ports.add(int(str(published).split("/")[0].rsplit(":", 1)[-1]))
        container.ports.update(int(str(port).split("/")[0]) for port in svc.get("expose", []))
        for path in svc.get("tmpfs", []):
            container.writable_mounts[str(path).split(":")[0]] = "tmpfs"
        for volume in svc.get("volumes", []):
            if isinstance(volume, dict):
                if not volume.get("read_only"):
                    container.writable_mounts[volume["target"]] = str(volume.get("source", volume["type"]))
            else:
                source, target, *mode = str(volume).split(":")
                if "ro" not in "".join(mode).split(","):
                    container.writable_mounts[target] = source
        healthcheck = svc.get("healthcheck", {})
        if not healthcheck.get("disable"):
            test = healthcheck.get("test", [])
            text = " ".join(test) if isinstance(test, list) else str(test)
            container.probed_ports += urls_ports(text)
            for path in re.findall(r":\d+(/\w+)", text):
                container.probe_paths["healthcheck"] = path
        containers.append(container)
    return containers


def pod_templates() -> Iterator[tuple[Manifest, Manifest]]:
    """(workload, pod template) for every workload in deploy/k8s."""
    for document in k8s_documents():
        if document["kind"] in POD_WORKLOADS:
            yield document, document["spec"]["template"]


def env_from(container: Manifest, where: str) -> dict[str, str]:
    """A Kubernetes container's environment: envFrom ConfigMaps and Secrets, then env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config_map = k8s_objects("ConfigMap").get(source["configMapRef"]["name"])
            assert config_map is not None, f"{where}: no ConfigMap {source['configMapRef']['name']}"
            env.update(config_map.get("data", {}))
        if "secretRef" in source:
            secret = k8s_objects("Secret").get(source["secretRef"]["name"])
            assert secret is not None, f"{where}: no Secret {source['secretRef']['name']}"
            env.update(dict.fromkeys(secret.get("data", {}), "<secret>"))
            env.update(secret.get("stringData", {}))
    for item in container.get("env", []):
        env[item["name"]] = str(item.get("value", "<valueFrom>"))
    return env


def k8s_containers() -> list[Container]:
    """Every container in deploy/k8s that runs the Piazza image."""
    containers = []
    for workload, template in pod_templates():
        spec = template["spec"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            if image_name(container["image"]) != PIAZZA_IMAGE:
                continue
            where = f"{workload['kind']} {workload['metadata']['name']} container {container['name']}"
            command = container.get("command")
            if command is not None:
                assert command[0] == "piazza", f"{where}: command must be piazza, not {command[0]}"
                argv = [*command[1:], *container.get("args", [])]
            else:
                argv = container.get("args", dockerfile_cmd())
            named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
            deployed = Container(where, [str(a) for a in argv], env_from(container, where))
            deployed.pod_labels = dict(template["metadata"]["labels"])
            deployed.ports = {p["containerPort"] for p in container.get("ports", [])}
            for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
                http = container.get(probe_name, {}).get("httpGet")
                if http:
                    port = http["port"]
                    deployed.probed_ports.append(named.get(port, port) if isinstance(port, str) else port)
                    deployed.probe_paths[probe_name] = http["path"]
            volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
            for mount in container.get("volumeMounts", []):
                if not mount.get("readOnly"):
                    volume = volumes[mount["name"]]
                    kind = next(key for key in volume if key != "name")
                    deployed.writable_mounts[mount["mountPath"]] = f"{kind} {mount['name']}"
            annotations = template.get("metadata", {}).get("annotations", {})
            if "prometheus.io/port" in annotations:
                deployed.probed_ports.append(int(annotations["prometheus.io/port"]))
            containers.append(deployed)
    return containers


def all_containers() -> list[Container]:
    """Every Piazza container of docker-compose.yml and deploy/k8s."""
    return [*compose_containers(), *k8s_containers()]


def report(problems: list[str]) -> str:
    """An assertion message listing every problem found."""
    return "\n".join(["", *problems])


# --- the files parse and hang together ----------------------------------------------------------------


@pytest.mark.parametrize("path", [COMPOSE_FILE, *k8s_files()], ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_every_yaml_file_parses_into_objects(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]

    assert documents, f"{path} is empty"
    for document in documents:
        assert isinstance(document, dict)
        if path.parent == K8S_DIR:
            assert {"apiVersion", "kind"} <= document.keys(), f"{path}: {document}"
            assert document["kind"] == "Kustomization" or document["metadata"]["name"]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())

    listed = set(kustomization["resources"])
    present = {p.name for p in k8s_files()} - {"kustomization.yaml"}
    assert listed == present
    assert [image["name"] for image in kustomization["images"]] == [PIAZZA_IMAGE]


def test_every_service_in_the_registry_is_deployed_with_migrations() -> None:
    expected = {("migrate",)} | {("serve", s) for s in WEB_COMPONENTS} | {("worker", w) for w in WORKERS}
    for source, containers in (("compose", compose_containers()), ("k8s", k8s_containers())):
        deployed = {tuple(c.argv[:1]) if c.argv[0] == "migrate" else tuple(c.argv[:2]) for c in containers}
        assert expected <= deployed, f"{source} does not run {sorted(expected - deployed)}"


# --- commands, settings, ports ------------------------------------------------------------------------


def test_every_piazza_command_is_a_real_subcommand_with_real_services() -> None:
    problems = [f"{c.where}: {p}" for c in all_containers() for p in command_problems(c.argv)]

    assert not problems, report(problems)


def test_command_parser_refuses_what_the_cli_would() -> None:
    assert command_problems(["serve", "ingress", "--host", "0.0.0.0", "--port", "8000"]) == []
    assert command_problems(["serve", "inbox", "--host", "0.0.0.0", "--port", "8000"])
    assert command_problems(["worker", "inbox", "--host", "0.0.0.0", "--prot", "9100"])
    assert command_problems(["worker", "inbox", "--host", "0.0.0.0"])
    assert command_problems(["run"])
    assert command_problems(["migrat"])


def test_every_environment_name_is_one_piazza_reads() -> None:
    known = known_env_names()

    problems = [
        f"{c.where}: {name} is not read by Piazza"
        for c in all_containers()
        for name in c.env
        if name not in known
    ]
    assert not problems, report(problems)


def test_environment_names_come_from_the_settings_classes() -> None:
    known = known_env_names()

    assert {"DATABASE_URL", "NATS_URL", "PIAZZA_ENV", "PIAZZA_SECRET_KEYS"} <= known
    assert {"PIAZZA_INGRESS_MAX_BODY_BYTES", "PIAZZA_INBOX_BATCH_SIZE", "PIAZZA_PORT"} <= known
    assert "PIAZZA_INGRESS_PORT" not in known


def test_servers_are_probed_and_exposed_on_the_port_they_listen_on() -> None:
    problems = []
    for container in all_containers():
        port = parse_command(container.argv).port
        if port is None:
            assert not container.probed_ports, f"{container.where} does not serve, yet is probed"
            continue
        if container.ports != {port}:
            problems.append(f"{container.where}: listens on {port}, opens {sorted(container.ports)}")
        if not container.probed_ports:
            problems.append(f"{container.where}: no health check")
        problems += [
            f"{container.where}: listens on {port}, probed on {probed}"
            for probed in container.probed_ports
            if probed != port
        ]
    assert not problems, report(problems)


def test_probes_ask_the_health_endpoints_every_server_has() -> None:
    for container in compose_containers():
        if parse_command(container.argv).port is not None:
            assert container.probe_paths.get("healthcheck") in {"/healthz", "/readyz"}, container.where
    for container in k8s_containers():
        if parse_command(container.argv).port is not None:
            assert container.probe_paths.get("livenessProbe") == "/healthz", container.where
            assert container.probe_paths.get("readinessProbe") == "/readyz", container.where


# --- the image ----------------------------------------------------------------------------------------


def test_dockerfile_runs_piazza_with_a_valid_default_command() -> None:
    (entrypoint,) = final_stage("ENTRYPOINT")
    cmd = dockerfile_cmd()

    assert json.loads(entrypoint) == ["piazza"]
    assert command_problems(cmd) == []
    port = parse_command(cmd).port
    assert [int(p.split("/")[0]) for value in final_stage("EXPOSE") for p in value.split()] == [port]


def test_dockerfile_builds_on_python_311_slim_in_stages() -> None:
    bases = [i.value for i in dockerfile() if i.keyword == "FROM"]
    args = " ".join(i.value for i in dockerfile() if i.keyword == "ARG")

    assert len(bases) >= 2, "build and runtime stages"
    assert all(base.startswith("python:${PYTHON_VERSION}-slim") for base in bases)
    assert "PYTHON_VERSION=3.11" in args
    assert any("--from=build" in value for value in final_stage("COPY"))
    assert "[dev]" not in DOCKERFILE.read_text(), "no development extras in the image"


def test_dockerfile_runs_as_an_unprivileged_numeric_user() -> None:
    (user,) = final_stage("USER")

    uid = user.split(":")[0]
    assert uid.isdigit(), "Kubernetes can verify runAsNonRoot only for a numeric user"
    assert int(uid) != 0


def test_dockerfile_health_check_asks_healthz_with_python_on_the_default_port() -> None:
    (healthcheck,) = final_stage("HEALTHCHECK")
    _, _, command = healthcheck.partition("CMD ")
    argv = json.loads(command)

    assert argv[0] == "python", "slim images have no curl"
    assert "/healthz" in argv[-1]
    assert {int(p) for p in re.findall(r"\b\d{4,5}\b", argv[-1])} == {parse_command(dockerfile_cmd()).port}


def test_dockerfile_environment_is_production_and_known() -> None:
    env: dict[str, str] = {}
    for value in final_stage("ENV"):
        for item in shlex.split(value):
            name, _, setting = item.partition("=")
            env[name] = setting

    assert env["PIAZZA_ENV"] == "production"
    assert set(env) <= known_env_names() | PYTHON_RUNTIME_ENV


def dockerignore_patterns() -> list[str]:
    """The .dockerignore patterns, in order."""
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def pattern_matches(pattern: list[str], parts: list[str]) -> bool:
    """Match path components against pattern components (``**`` spans any number of them)."""
    if not pattern:
        return not parts
    head, *rest = pattern
    if head == "**":
        return any(pattern_matches(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and pattern_matches(rest, parts[1:])


def excluded_from_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = path.split("/")
    excluded = False
    for pattern in dockerignore_patterns():
        body = pattern.removeprefix("!").strip("/").split("/")
        if any(pattern_matches(body, parts[:n]) for n in range(1, len(parts) + 1)):
            excluded = not pattern.startswith("!")
    return excluded


def copied_from_context() -> list[str]:
    """The build-context paths the Dockerfile copies (not those copied from another stage)."""
    return [
        source
        for i in dockerfile()
        if i.keyword == "COPY" and "--from=" not in i.value
        for source in shlex.split(i.value)[:-1]
        if not source.startswith("--")
    ]


def test_dockerfile_copies_the_packages_and_the_files_pyproject_needs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        pattern.rstrip("*") for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }

    assert {"pyproject.toml", pyproject["project"]["readme"]} <= set(copied_from_context())
    assert packages - {"bench"} <= set(copied_from_context()), "bench is a developer tool"


def test_dockerfile_copies_only_what_the_repository_has() -> None:
    missing = [source for source in copied_from_context() if not (ROOT / source).exists()]

    assert not missing, f"`docker build` would fail: the repository has no {missing}"


def test_build_context_holds_what_the_dockerfile_copies_and_nothing_local() -> None:
    files = [
        path.relative_to(ROOT).as_posix()
        for source in copied_from_context()
        for path in ([ROOT / source] if (ROOT / source).is_file() else (ROOT / source).rglob("*.py"))
        if "__pycache__" not in path.parts
    ]

    assert files
    assert [f for f in files if excluded_from_context(f)] == []
    assert not excluded_from_context("README.md")
    for local in (".venv/bin/python", ".data/piazza.db", ".git/HEAD", ".env", "tests/conftest.py"):
        assert excluded_from_context(local), local
    assert excluded_from_context("shared/__pycache__/config.cpython-311.pyc")


# --- production settings ------------------------------------------------------------------------------


def test_production_containers_run_with_piazza_env_production() -> None:
    problems = [
        f"{c.where}: PIAZZA_ENV={c.env.get('PIAZZA_ENV')!r}"
        for c in all_containers()
        if c.env.get("PIAZZA_ENV") != "production"
    ]
    assert not problems, report(problems)


def test_no_deploy_file_sets_the_development_bootstrap_token() -> None:
    texts = {p.name: p.read_text() for p in [COMPOSE_FILE, DOCKERFILE, COMPOSE_ENV_EXAMPLE, *k8s_files()]}

    assert [c.where for c in all_containers() if "PIAZZA_BOOTSTRAP_TOKEN" in c.env] == []
    assert [name for name, text in texts.items() if "PIAZZA_BOOTSTRAP_TOKEN" in text] == []


def test_secrets_are_never_written_into_the_files() -> None:
    secret_template = k8s_objects("Secret")["piazza-secrets"]
    keys = secret_template["stringData"]["PIAZZA_SECRET_KEYS"]
    piazza_env = compose()["x-piazza-env"]

    with pytest.raises(ValueError, match="Fernet key"):  # a placeholder, so an unedited template fails closed
        Fernet(keys)
    assert "REPLACE_ME" in secret_template["stringData"]["DATABASE_URL"]
    assert piazza_env["PIAZZA_SECRET_KEYS"].startswith("${PIAZZA_SECRET_KEYS:?")
    assert "${POSTGRES_PASSWORD:?" in piazza_env["DATABASE_URL"]


def test_compose_env_example_names_every_required_variable() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_FILE.read_text()))
    example = {
        line.lstrip("# ").split("=", 1)[0]
        for line in COMPOSE_ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"#? ?\w+=", line)
    }

    assert required
    assert required <= example


# --- wiring -------------------------------------------------------------------------------------------


def test_compose_starts_services_after_migrations_and_healthy_backends() -> None:
    services = compose_piazza_services()
    migrate = services["migrate"]

    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, svc in services.items():
        if name == "migrate":
            continue
        conditions = {dep: spec["condition"] for dep, spec in svc["depends_on"].items()}
        assert conditions == {
            "migrate": "service_completed_successfully",
            "nats": "service_healthy",
            "postgres": "service_healthy",
            **SERVICE_DEPENDENCIES.get(name, {}),
        }, name
    for backend in ("nats", "postgres"):
        assert compose()["services"][backend]["healthcheck"]["test"], backend
    assert "-js" in compose()["services"]["nats"]["command"]


def service_backends(service: Manifest) -> list[Container]:
    """The Piazza containers of the pods a Service selects."""
    selector = service["spec"]["selector"]
    return [c for c in k8s_containers() if selector.items() <= c.pod_labels.items()]


def ingress_paths() -> list[Manifest]:
    """The Ingress's paths (each with its pathType and backend)."""
    (ingress,) = k8s_objects("Ingress").values()
    return [path for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]


def routed_service(request_path: str) -> str | None:
    """The Service the Ingress sends a request path to, by the Ingress API's rule: the longest matching
    path wins, Exact before Prefix, and a Prefix path matches whole path segments."""
    best: tuple[tuple[int, bool], str] | None = None
    for path in ingress_paths():
        if path["pathType"] == "Exact":
            matched = request_path == path["path"]
        else:
            prefix = path["path"].rstrip("/").split("/")
            matched = request_path.rstrip("/").split("/")[: len(prefix)] == prefix
        rank = (len(path["path"].rstrip("/")), path["pathType"] == "Exact")
        if matched and (best is None or rank > best[0]):
            best = (rank, path["backend"]["service"]["name"])
    return best[1] if best else None


def served_components(container: Container) -> set[str]:
    """The web components a ``piazza serve`` container serves (none for other commands)."""
    parsed = parse_command(container.argv)
    return set(parsed.params["services"]) if parsed.path == ("serve",) else set()


def test_ingress_routes_each_public_path_to_the_service_that_serves_it() -> None:
    services = k8s_objects("Service")
    routes = {path["path"]: path["backend"]["service"]["name"] for path in ingress_paths()}

    assert {path["pathType"] for path in ingress_paths()} <= {"Exact", "Prefix"}
    assert set(routes) == set(PUBLIC_ROUTES)
    for path, service_name in routes.items():
        service = services[service_name]
        backends = service_backends(service)
        assert backends, f"{path}: Service {service_name} selects no Piazza pod"
        served = {frozenset(served_components(c)) for c in backends}
        assert served == {frozenset({PUBLIC_ROUTES[path]})}, path
        (service_port,) = service["spec"]["ports"]
        for backend in backends:
            assert service_port["targetPort"] == "http"
            assert backend.ports == {parse_command(backend.argv).port}


def test_every_api_route_reaches_the_component_that_serves_it() -> None:
    services = k8s_objects("Service")
    problems = []
    for component, target in WEB_COMPONENTS.items():
        for router in load_component(target).routers:
            for route in router.routes:
                request_path = getattr(route, "path", "")
                service_name = routed_service(request_path)
                if service_name is None:
                    problems.append(f"{request_path} ({component}) is not routed")
                    continue
                served = [served_components(c) for c in service_backends(services[service_name])]
                if not served or not all(component in components for components in served):
                    problems.append(f"{request_path} ({component}) is routed to Service {service_name}")
    assert not problems, report(problems)


def test_the_analytics_api_reaches_the_inbox_api_inside_the_deployment() -> None:
    services = compose_piazza_services()
    by_name = dict(zip(services, compose_containers(), strict=True))
    inbox_services = [name for name, c in by_name.items() if "inbox-api" in served_components(c)]
    problems = []
    for name, container in by_name.items():
        if "analytics-api" not in served_components(container):
            continue
        url = container.env.get(INBOX_URL_ENV, "")
        match = re.fullmatch(r"http://([\w-]+):(\d+)/?", url)
        if not match or match[1] not in inbox_services:
            problems.append(f"compose {name}: {INBOX_URL_ENV}={url!r} is not an inbox-api service")
            continue
        if int(match[2]) != parse_command(by_name[match[1]].argv).port:
            problems.append(f"compose {name}: {url} is not the port {match[1]} listens on")
        if match[1] not in services[name]["depends_on"]:
            problems.append(f"compose {name}: does not depend on {match[1]}")
    k8s_services = k8s_objects("Service")
    for container in k8s_containers():
        if "analytics-api" not in served_components(container):
            continue
        url = container.env.get(INBOX_URL_ENV, "")
        match = re.fullmatch(r"http://([\w-]+)(?::(\d+))?/?", url)
        if not match or match[1] not in k8s_services:
            problems.append(f"{container.where}: {INBOX_URL_ENV}={url!r} is not a Service in deploy/k8s")
            continue
        service = k8s_services[match[1]]
        backends = service_backends(service)
        if not backends or not all("inbox-api" in served_components(c) for c in backends):
            problems.append(f"{container.where}: Service {match[1]} does not select inbox-api pods")
        if int(match[2] or 80) not in {port["port"] for port in service["spec"]["ports"]}:
            problems.append(f"{container.where}: {url} is not a port of Service {match[1]}")
    assert not problems, report(problems)


def report_folder(container: Container) -> PurePosixPath:
    """Where a container's analytics worker writes reports (services/analytics/service/reports.py),
    relative paths taken from the image's working directory."""
    (workdir,) = final_stage("WORKDIR")
    folder = container.env.get(REPORT_FOLDER_ENV) or str(
        PurePosixPath(container.env.get("PIAZZA_DATA_DIR", ".data")) / "reports"
    )
    return PurePosixPath(workdir) / folder


def test_the_analytics_worker_writes_reports_to_a_volume() -> None:
    assert {REPORT_FOLDER_ENV, "PIAZZA_DATA_DIR"} <= known_env_names()
    workers = [
        c
        for c in all_containers()
        if parse_command(c.argv).path == ("worker",) and parse_command(c.argv).params["name"] == "analytics"
    ]
    assert len(workers) == 2, "one in docker-compose.yml, one in deploy/k8s"
    problems = []
    for container in workers:
        folder = report_folder(container)
        mounts = [path for path in container.writable_mounts if folder.is_relative_to(path)]
        if not mounts:
            problems.append(f"{container.where}: reports go to {folder}, on the read-only root filesystem")
            continue
        mount = max(mounts, key=len)
        if mount == "/tmp":
            problems.append(
                f"{container.where}: reports go to {folder}, on the /tmp scratch space "
                f"({container.writable_mounts[mount]})"
            )
    assert not problems, report(problems)


def test_nats_runs_a_jetstream_cluster_matching_its_routes() -> None:
    statefulset = k8s_objects("StatefulSet")["nats"]
    config = k8s_objects("ConfigMap")["nats-config"]["data"]["nats.conf"]
    headless = statefulset["spec"]["serviceName"]
    replicas = statefulset["spec"]["replicas"]

    assert "jetstream" in config
    assert "store_dir: /data" in config
    routes = re.findall(r"nats://([\w-]+)\.([\w-]+):6222", config)
    assert routes == [(f"nats-{i}", headless) for i in range(replicas)]
    assert k8s_objects("Service")[headless]["spec"]["clusterIP"] == "None"
    assert replicas == 3
    assert k8s_objects("ConfigMap")["piazza-config"]["data"]["NATS_URL"] == "nats://nats:4222"


def test_every_pod_meets_the_restricted_pod_security_profile() -> None:
    problems = []
    for workload, template in pod_templates():
        spec = template["spec"]
        name = f"{workload['kind']} {workload['metadata']['name']}"
        pod_security = spec.get("securityContext", {})
        if not pod_security.get("runAsNonRoot"):
            problems.append(f"{name}: runAsNonRoot")
        if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: seccompProfile")
        if spec.get("enableServiceLinks") is not False:
            problems.append(f"{name}: service links would add *_PORT variables (PIAZZA_INGRESS_PORT ...)")
        for container in spec["containers"]:
            security = container.get("securityContext", {})
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}/{container['name']}: allowPrivilegeEscalation")
            if security.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{name}/{container['name']}: capabilities.drop ALL")
            if image_name(container["image"]) == PIAZZA_IMAGE and not security.get("readOnlyRootFilesystem"):
                problems.append(f"{name}/{container['name']}: Piazza writes nothing; readOnlyRootFilesystem")
            resources = container.get("resources", {})
            if "memory" not in resources.get("requests", {}) or "memory" not in resources.get("limits", {}):
                problems.append(f"{name}/{container['name']}: memory request and limit")
    assert not problems, report(problems)


DOCUMENTED_ELSEWHERE = frozenset({"TEST_DATABASE_URL"})
"""Names the documentation mentions that the test suite, not Piazza, reads."""


@pytest.mark.parametrize(
    "path",
    [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("*.md"))],
    ids=lambda p: str(Path(p).relative_to(ROOT)),
)
def test_every_environment_name_the_docs_mention_is_one_piazza_reads(path: Path) -> None:
    known = known_env_names() | DOCUMENTED_ELSEWHERE
    # Whole names only: a prefix written as PIAZZA_REPLY_* does not match (it ends in "_").
    mentioned = set(re.findall(r"\b(?:PIAZZA_[A-Z0-9_]*[A-Z0-9]|DATABASE_URL|NATS_URL)\b", path.read_text()))
    unknown = sorted(mentioned - known)
    assert not unknown, f"{path.name} mentions settings Piazza does not read: {unknown}"
