"""The container image and the compose stack, checked without a container daemon (this machine has none):
the Dockerfile parsed line by line against the README's install and start commands and the package's own
entry point, compose.yaml parsed as YAML against what the stack must have, and every variable either gives
Flywheel checked against the settings Flywheel reads (bot/config.py)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {f.alias for f in Settings.model_fields.values()}
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
FLYWHEEL_SERVICES = ("migrate", "app", "worker")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arguments for word, arguments in self.instructions if word == keyword]


def dockerfile_stages(text: str) -> list[Stage]:
    """Instructions by stage: continuation lines joined, comments and the parser directive dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        lines.append(" ".join(current.split()))
        current = ""
    stages: list[Stage] = []
    for line in lines:
        word, _, arguments = line.partition(" ")
        if word.upper() == "FROM":
            base, _, name = arguments.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip() or None))
        else:
            stages[-1].instructions.append((word.upper(), arguments))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dockerfile_stages((ROOT / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _exec_form(arguments: str) -> list[str]:
    """`CMD ["a", "b"]` (or a healthcheck's `CMD [...]` after its options) as an argument list."""
    return json.loads(arguments[arguments.index("["):])


def _flywheel_command(argv: list[str]) -> str:
    """The `flywheel` subcommand `argv` runs, its options parsed by the command itself (a typo fails here)."""
    assert argv[0] == "flywheel" and PROJECT["scripts"]["flywheel"] == "bot.cli:main", argv
    command, rest, path = main, argv[1:], []
    while rest and rest[0] in getattr(command, "commands", {}):
        path.append(rest[0])
        command, rest = command.commands[rest[0]], rest[1:]
    assert path, f"{argv} names no flywheel command"
    command.make_context(" ".join(path), list(rest))
    return " ".join(path)


def test_the_image_is_built_in_two_slim_stages_and_runs_as_a_user_without_root(stages):
    builder, final = stages
    assert (builder.base, builder.name, final.base) == ("python:3.11-slim", "builder", "python:3.11-slim")
    users = final.all("USER")
    assert users and users[-1] not in ("root", "0", "0:0")
    assert any("useradd" in run and users[-1] in run for run in final.all("RUN"))
    # No compiler, package manager install, curl or wget in what ships; the wheels come from the builder only.
    shipped = " ".join(final.all("RUN"))
    for tool in ("apt-get", "apk ", "gcc", "build-essential", "curl", "wget"):
        assert tool not in shipped, tool
    assert final.all("COPY") == [] or all("--from=builder" in copy for copy in final.all("COPY"))


def test_the_image_installs_the_package_the_readme_installs(stages):
    builder, final = stages
    readme = (ROOT / "README.md").read_text()
    installs = re.findall(r"pip install(?: -\S+)* -e (\S+?)(?:\s|$)", readme)
    assert installs and installs[0] == "."  # the README installs the checkout: the project itself
    wheel = next(shlex.split(run) for run in builder.all("RUN") if run.startswith("pip wheel"))
    target = wheel[-1]
    assert target.split("[")[0] == installs[0]
    install = next(shlex.split(run.split(" ", 1)[1] if run.startswith("--mount") else run)
                   for run in final.all("RUN") if "pip install" in run)
    install = install[install.index("pip"):]
    package = install[-1]
    assert "--no-index" in install and package.split("[")[0] == PROJECT["name"]
    extras = re.findall(r"\[(.*)\]", package)
    assert all(extra in PROJECT["optional-dependencies"] for extra in ",".join(extras).split(",") if extra)
    assert extras == re.findall(r"\[(.*)\]", target)  # the extras built are the extras installed
    # The builder copies every package the project's own packaging includes, and what pyproject.toml reads.
    copied = {source for c in builder.all("COPY") for source in shlex.split(c)[:-1]}
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert {pattern.rstrip("*") for pattern in packages["include"]} | {"pyproject.toml", PROJECT["readme"]} <= copied


def test_the_image_starts_the_readme_command_and_checks_its_liveness_with_python(stages):
    final = stages[-1]
    argv = _exec_form(final.all("CMD")[-1])
    readme = (ROOT / "README.md").read_text()
    assert _flywheel_command(argv) == "serve" and "`flywheel serve`" in readme
    port = argv[argv.index("--port") + 1]
    assert final.all("EXPOSE") == [port]
    check = final.all("HEALTHCHECK")
    assert len(check) == 1
    probe = _exec_form(check[0])
    assert probe[:2] == ["python", "-c"] and "urllib.request" in probe[2]
    assert f"http://127.0.0.1:{port}/healthz" in probe[2]
    env = " ".join(final.all("ENV"))
    assert {name for name in re.findall(r"\b([A-Z][A-Z0-9_]+)=", env) if not name.startswith("PYTHON")} <= SETTINGS


def test_compose_runs_postgres_then_the_migrations_once_then_the_app_and_the_worker(compose):
    services = compose["services"]
    assert set(services) == {"postgres", *FLYWHEEL_SERVICES}
    postgres = services["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"]) and postgres["restart"] == "unless-stopped"
    migrate = services["migrate"]
    assert _flywheel_command(migrate["command"]) == "db upgrade"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy" and migrate["restart"] == "no"
    for name in ("app", "worker"):
        service = services[name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert service["restart"] == "unless-stopped", name
    assert _flywheel_command(services["worker"]["command"]) == "worker"
    app = services["app"]
    assert _flywheel_command(app["command"]) == "serve"
    port = app["command"][app["command"].index("--port") + 1]
    probe = app["healthcheck"]["test"]
    assert probe[:3] == ["CMD", "python", "-c"] and f"http://127.0.0.1:{port}/readyz" in probe[3]
    assert app["ports"] == [f"{port}:{port}"]


def test_compose_gives_flywheel_only_settings_it_reads_and_its_secrets_only_from_the_ignored_env_file(compose):
    text = (ROOT / "compose.yaml").read_text()
    for name in FLYWHEEL_SERVICES:
        service = compose["services"][name]
        assert service["env_file"] == ".env" and service["build"] == "."
        assert set(service["environment"]) <= SETTINGS, name
        assert "FLYWHEEL_DATABASE_URL" in service["environment"]
        for value in service["environment"].values():
            assert not re.search(r"xox[bpa]-|xapp-", str(value))  # no token written into the file
    # .env is git-ignored and never committed; .env.example is committed and names only settings or what
    # compose itself reads (${NAME} in compose.yaml).
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0
    tracked = subprocess.run(["git", "ls-files", ".env", ".env.example"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked == [".env.example"]
    interpolated = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.M)
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "FLYWHEEL_SECRET_KEY"} <= set(example)
    assert [name for name in example if name not in SETTINGS | interpolated] == []
    assert ".env" in (ROOT / ".dockerignore").read_text().split()
