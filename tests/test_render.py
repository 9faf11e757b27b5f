"""Render the template in every combination that matters and run what it generates.

Each rendered project must pass its own linters (``ruff check``, ``ruff format --check``,
``mypy --strict``) and its own test suite, exactly as a user would run them from the
project root.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.stack import proxy_binary
from tests.conftest import TOOLS, render

STYLES = ("decorator", "wrapper")
FORMATS = ("sse", "ndjson", "text")


# Names of modules, functions and classes that the package imports or defines: as endpoint
# names they must not shadow anything (endpoints/__init__.py imports only the endpoints).
RISKY_NAMES = (
    "dataclass",
    "annotations",
    "json",
    "flask",
    "streaming",
    "sse",
    "ticks",
    "logging",
    "endpoint",
    "request",
    "register_endpoints",
    "static",
)


def every_endpoint_kind(names: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """One endpoint per style x format x session, with varied paths (and *names*, if given)."""
    kinds = list(itertools.product(STYLES, FORMATS, (True, False)))
    return [
        {
            "name": names[n] if names else f"{format_}_{style}{'_session' if session else ''}",
            "path": f"/{format_}/{style}{'/session' if session else ''}",
            "style": style,
            "format": format_,
            "session": session,
        }
        for n, (style, format_, session) in enumerate(kinds)
    ]


# Every style x format x session combination runs under both servers; each proxy config
# (nginx, Apache, Caddy); a project of channels only; a project with one session-less
# endpoint; and Copier's defaults.
PROJECTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "gthread-every-kind": {
        "project_name": "live-gthread",
        "server": "gthread",
        "proxy": "nginx",
        "endpoints": every_endpoint_kind(),
    },
    "gevent-every-kind": {
        "project_name": "Live.Gevent",
        "server": "gevent",
        "proxy": "apache",
        "endpoints": every_endpoint_kind(RISKY_NAMES),
    },
    # Channels in every style x format x session, beside a ticks endpoint; their tests run
    # on both brokers against a redis-server of their own.
    "channels": {
        "project_name": "live-channels",
        "server": "gevent",
        "proxy": "nginx",
        "endpoints": [
            {**endpoint, "name": f"ch_{endpoint['name']}", "source": "channel"}
            for endpoint in every_endpoint_kind()
            if endpoint["format"] != "text"
        ]
        + [
            {
                "name": "ticks",
                "path": "/ticks",
                "style": "decorator",
                "format": "sse",
                "session": False,
            }
        ],
    },
    # Channels only, as `new --source channel` makes it: nothing may assume a ticks endpoint.
    "channels-only": {
        "project_name": "orders",
        "server": "gthread",
        "proxy": "caddy",
        "endpoints": [
            {
                "name": "orders",
                "path": "/orders",
                "style": "decorator",
                "format": "sse",
                "session": True,
                "source": "channel",
            },
            {
                "name": "feed",
                "path": "/api/feed",
                "style": "wrapper",
                "format": "ndjson",
                "session": False,
                "source": "channel",
            },
        ],
    },
    "single-plain-endpoint": {
        "project_name": "tail",
        "package_name": "log_tail",
        "description": 'Tails a "log"',
        "server": "gevent",
        "proxy": "caddy",
        "endpoints": [
            {
                "name": "lines",
                "path": "/api/v1/lines",
                "style": "wrapper",
                "format": "text",
                "session": False,
            },
        ],
    },
}

CHECKS: dict[str, list[str]] = {
    "ruff-check": [str(TOOLS / "ruff"), "check", "--no-cache", "."],
    "ruff-format": [str(TOOLS / "ruff"), "format", "--check", "--no-cache", "."],
    "mypy-strict": [str(TOOLS / "mypy"), "--strict", "--cache-dir", ".mypy_cache"],
    # -rs lists why each test was skipped (see below).
    "pytest": [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-rs",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
    ],
}


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory, template_snapshot: Path) -> dict[str, Path]:
    """Each project of `PROJECTS`, rendered once per test process."""
    base = tmp_path_factory.mktemp("rendered")
    return {name: render(template_snapshot, base / name, data) for name, data in PROJECTS.items()}


@pytest.mark.slow
@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("project", PROJECTS)
def test_generated_project_passes_its_own_checks(
    rendered: dict[str, Path], project: str, check: str
) -> None:
    result = subprocess.run(
        CHECKS[check],
        cwd=rendered[project],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{check} failed in {project}:\n{result.stdout}\n{result.stderr}"
    # A test parametrized over endpoints the project lacks is left out, not reported skipped.
    assert "got empty parameter set" not in result.stdout, result.stdout


@pytest.mark.parametrize("project", PROJECTS)
def test_one_module_per_endpoint_and_one_test_module_for_all(
    rendered: dict[str, Path], project: str
) -> None:
    root = rendered[project]
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    package = root / "src" / answers["package_name"]
    names = sorted(endpoint["name"] for endpoint in answers["endpoints"])
    assert sorted(p.stem for p in (package / "endpoints").glob("*.py")) == sorted(
        [*names, "__init__"]
    )
    # No test file per endpoint: one parametrized module covers the ticks endpoints, so no
    # endpoint name can collide with another test module; channels share test_channels,
    # test_channel_limits and test_channel_promises, and their brokers have a suite of their
    # own (and one of URLs).
    channels = [e for e in answers["endpoints"] if e.get("source") == "channel"]
    assert sorted(p.name for p in (root / "tests").glob("test_*.py")) == sorted(
        [
            "test_app.py",
            "test_endpoints.py",
            "test_metrics.py",
            "test_proxy.py",
            "test_sse.py",
            "test_streaming.py",
            *(
                [
                    "test_broker_urls.py",
                    "test_brokers.py",
                    "test_channels.py",
                    "test_channel_limits.py",
                    "test_channel_promises.py",
                ]
                if channels
                else []
            ),
        ]
    )
    assert (package / "channels.py").exists() == bool(channels)
    table = (root / "tests" / "test_endpoints.py").read_text()
    for endpoint in answers["endpoints"]:
        listed = f'Kind("{endpoint["name"]}", "{endpoint["path"]}", ' in table
        assert listed == (endpoint not in channels)
    configs = {"nginx": "nginx.conf", "caddy": "Caddyfile", "apache": "apache.conf"}
    deploy = {p.name for p in (root / "deploy").iterdir()}
    assert deploy == {
        "gunicorn.conf.py",
        "dev-cert.sh",
        "grafana-dashboard.json",
        configs[answers["proxy"]],
    }
    assert os.access(root / "deploy" / "dev-cert.sh", os.X_OK)
    assert answers["endpoints"] == PROJECTS[project].get("endpoints", answers["endpoints"])


def test_defaults_give_one_session_sse_endpoint(rendered: dict[str, Path]) -> None:
    answers = yaml.safe_load((rendered["defaults"] / ".copier-answers.yml").read_text())
    assert answers["endpoints"] == [
        {
            "name": "events",
            "path": "/events",
            "style": "decorator",
            "format": "sse",
            "session": True,
            "source": "ticks",
        }
    ]
    assert answers["package_name"] == "stream_demo"
    assert answers["server"] == "gthread"


def test_derived_package_name_is_an_identifier(rendered: dict[str, Path]) -> None:
    answers = yaml.safe_load((rendered["gevent-every-kind"] / ".copier-answers.yml").read_text())
    assert answers["package_name"] == "live_gevent"


@pytest.mark.parametrize("project", PROJECTS)
def test_endpoint_modules_use_the_chosen_style(rendered: dict[str, Path], project: str) -> None:
    root = rendered[project]
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    for endpoint in answers["endpoints"]:
        module = root / "src" / answers["package_name"] / "endpoints" / f"{endpoint['name']}.py"
        source = module.read_text()
        decorated = bool(
            re.search(r"\n    @stream_with_context\b.*\n    def generate\(\) ", source)
        )
        wrapped = "events = stream_with_context(generate(" in source
        assert (decorated, wrapped) == (
            endpoint["style"] == "decorator",
            endpoint["style"] == "wrapper",
        ), module
        # The session is touched in the view only: never inside the generator.
        view, _, generator = source.partition("def generate(")
        assert ("session[" in view) == endpoint["session"]
        assert "session" not in generator


def test_github_workflow_is_valid_and_runs_every_check(rendered: dict[str, Path]) -> None:
    workflow = yaml.safe_load((rendered["defaults"] / ".github/workflows/ci.yml").read_text())
    steps = workflow["jobs"]["test"]["steps"]
    commands = "\n".join(step.get("run", "") for step in steps)
    for command in ("ruff check", "ruff format --check", "mypy", "python -m pytest"):
        assert command in commands
    # Pull-request branches run once, as pull requests; pushes only on the default branch.
    assert workflow[True] == {"push": {"branches": ["main"]}, "pull_request": None}  # "on" is True


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_generated_project_pins_the_linters_it_is_checked_with(
    rendered: dict[str, Path], tool: str
) -> None:
    # The checks above run this suite's own ruff and mypy: the pins must name those versions,
    # or a user's CI would run linters that no test of the template ever ran.
    pyproject = tomllib.loads((rendered["defaults"] / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["optional-dependencies"]["dev"] if d.startswith(tool)]
    assert pins == [f"{tool}=={importlib.metadata.version(tool)}"]


def test_the_generated_caddyfile_is_formatted_as_caddy_fmt_writes_it(
    rendered: dict[str, Path],
) -> None:
    # Caddy warns "Caddyfile input is not formatted" on every start otherwise.
    caddy = proxy_binary("caddy")
    if caddy is None:
        pytest.skip("caddy is not installed (apt-get install caddy)")
    caddyfile = rendered["channels-only"] / "deploy" / "Caddyfile"
    formatted = subprocess.run(
        [caddy, "fmt", str(caddyfile)], capture_output=True, text=True, check=True, timeout=60
    )
    assert formatted.stdout == caddyfile.read_text()


def test_a_test_that_hangs_fails_instead_of_holding_ci(
    rendered: dict[str, Path], tmp_path: Path
) -> None:
    project = Path(shutil.copytree(rendered["defaults"], tmp_path / "project"))
    pyproject = project / "pyproject.toml"
    options = tomllib.loads(pyproject.read_text())["tool"]["pytest"]["ini_options"]
    dev = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]["dev"]
    assert [d for d in dev if d.startswith("pytest-timeout")]
    assert 0 < options["timeout"] <= 300
    # The same setting at 1 s, against a test that hangs: pytest-timeout reads it.
    setting = f"timeout = {options['timeout']}\n"
    pyproject.write_text(pyproject.read_text().replace(setting, "timeout = 1\n"))
    (project / "tests" / "test_hang.py").write_text(
        "import time\n\n\ndef test_hangs() -> None:\n    time.sleep(60)\n"
    )
    result = subprocess.run(
        [*CHECKS["pytest"], "tests/test_hang.py"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Timeout" in result.stdout
