"""Fixtures for the command-line tests.

The tests never depend on this repository's own tags or on its working tree being clean: a
session fixture snapshots the current ``copier.yml`` and ``template/`` (plus the migration
script they call) into a temporary git repository tagged ``v0.1.0``, and the CLI is pointed at
it through ``STREAM_SCAFFOLD_TEMPLATE``. ``HOME`` is a temporary directory, so nothing is
written to the real home, and git reads no user or system configuration.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scaffold_cli import _template_source
from scaffold_cli._cli import app
from tests.conftest import ROOT, clone_working_tree, commit_and_tag, git, snapshot_template

BIN = Path(sys.executable).parent

__all__ = ["ROOT", "commit_and_tag", "git", "snapshot_template"]


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """HOME in a temp dir, no user git config, and the template snapshot as the default."""
    home = tmp_path_factory.mktemp("home")
    template = snapshot_template(tmp_path_factory.mktemp("template") / "repo")
    commit_and_tag(template, "v0.1.0", "Template snapshot")
    saved = os.environ.copy()
    for name in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
        "GIT_DIR",
        "GIT_WORK_TREE",
    ):
        os.environ.pop(name, None)
    os.environ.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
        STREAM_SCAFFOLD_TEMPLATE=str(template),
    )
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test User\n\temail = test@example.invalid\n"
        "[init]\n\tdefaultBranch = main\n",
        encoding="utf-8",
    )
    yield template
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def template_repo(isolated_environment: Path) -> Path:
    """The snapshot template repository (tag v0.1.0)."""
    return isolated_environment


class Result:
    """What a command printed and returned."""

    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self) -> str:
        return f"Result({self.exit_code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def invoke(*args: str | Path, input_: str | None = None) -> Result:
    """Run the CLI in-process with typer's CliRunner."""
    result = CliRunner().invoke(app, [str(arg) for arg in args], input=input_)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Result(result.exit_code, result.stdout, result.stderr)


def run_script(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Result:
    """Run the installed ``stream-scaffold`` console script as a process."""
    proc = subprocess.run(
        [str(BIN / "stream-scaffold"), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_user_error(result: Result, *fragments: str) -> None:
    """Exit status 1, one ``Error:`` line on stderr containing ``fragments``, no traceback."""
    assert result.exit_code == 1, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, result
    assert "Traceback" not in result.stderr + result.stdout, result
    for fragment in fragments:
        assert fragment in errors[0], (fragment, result)


def back_out(result: Result, project: Path) -> None:
    """Run the back-out command an ``Error:`` line suggests (``... back out with 'CMD'``), in
    the project, as a user pasting it would."""
    [error] = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    command = error.split("back out with '", 1)[1].rsplit("'", 1)[0]
    assert "clean" not in command, command
    subprocess.run(command, shell=True, cwd=project, check=True, capture_output=True)


def assert_bad_choice(result: Result, option: str, value: str, choices: tuple[str, ...]) -> None:
    """A usage error (exit 2) naming the option, the value and every choice; no traceback."""
    assert result.exit_code == 2, result
    assert "Traceback" not in result.stderr + result.stdout, result
    message = " ".join(result.stderr.replace("│", " ").split())
    listed = ", ".join(repr(choice) for choice in choices)
    assert f"Invalid value for '{option}'" in message, result
    assert f"{value!r} is not one of {listed}" in message, result


def tree_state(path: Path) -> dict[str, str]:
    """A fingerprint of a project: every file outside .git, HEAD, and git status."""
    state = {
        file.relative_to(path).as_posix(): hashlib.sha256(file.read_bytes()).hexdigest()
        for file in sorted(path.rglob("*"))
        if file.is_file() and ".git" not in file.relative_to(path).parts
    }
    if (path / ".git").exists():
        state["<HEAD>"] = git(path, "rev-parse", "HEAD")
        state["<status>"] = git(path, "status", "--porcelain", "--untracked-files=all")
    return state


def run_tool(project: Path, *command: str) -> None:
    """Run one of the dev tools from the scaffolder's venv inside a generated project."""
    proc = subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"{' '.join(command)}:\n{proc.stdout}\n{proc.stderr}"


def check_project(project: Path, *, lint: bool = True) -> None:
    """The generated project's own tests pass, and (optionally) ruff and mypy are clean."""
    run_tool(project, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x")
    if lint:
        run_tool(project, "ruff", "check", "--no-cache", ".")
        run_tool(project, "ruff", "format", "--no-cache", "--check", ".")
        run_tool(project, "mypy", "--strict", "--no-incremental")


@pytest.fixture(scope="session")
def base_project(tmp_path_factory: pytest.TempPathFactory, template_repo: Path) -> Path:
    """A project made with ``new --defaults``; tests that change it work on a copy."""
    destination = tmp_path_factory.mktemp("base") / "live-demo"
    result = invoke("new", destination, "--defaults")
    assert result.exit_code == 0, result
    return destination


@pytest.fixture
def project(base_project: Path, tmp_path: Path) -> Path:
    """A private copy of `base_project` (git history included)."""
    copy = tmp_path / base_project.name
    shutil.copytree(base_project, copy, symlinks=True)
    return copy


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Create a project with extra ``new`` options."""

    def make(*options: str, name: str = "proj") -> Path:
        destination = tmp_path / name
        result = invoke("new", destination, "--defaults", *options)
        assert result.exit_code == 0, result
        return destination

    return make


# ------------------------------------------------------------- installed wheels
SOURCE_FILES = (
    *_template_source._TEMPLATE_FILES,
    "scaffold_cli",
    "pyproject.toml",
    "hatch_build.py",
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
)


def copy_source(source: Path) -> Path:
    """The files a wheel is built from, copied out of this checkout (not yet a repository)."""
    source.mkdir(parents=True)
    for name in SOURCE_FILES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(
                origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "_template")
            )
        else:
            shutil.copy2(origin, source / name)
    return source


def run_build(source: Path, out: Path) -> Path:
    """Build a wheel of the repository ``source`` offline; its version comes from git."""
    run_python("-m", "build", "--wheel", "--no-isolation", "--outdir", out, source)
    [wheel] = sorted(out.glob("*.whl"), key=lambda path: path.stat().st_mtime)[-1:]
    return wheel


def build_wheel(source: Path, version: str, out: Path) -> Path:
    """Commit, tag v<version>, and build a wheel of ``source`` (versioned by the tag)."""
    commit_and_tag(source, f"v{version}", f"Release {version}")
    wheel = run_build(source, out)
    assert f"-{version}-" in wheel.name, wheel
    return wheel


def make_venv(venv: Path) -> Path:
    """A virtual environment whose dependencies (copier, typer...) are the suite's own."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = sysconfig.get_paths()["purelib"]
    [site_packages] = list((venv / "lib").glob("python*/site-packages"))
    (site_packages / "dependencies.pth").write_text(purelib + "\n", "utf-8")
    return venv


def run_python(*args: str | Path) -> None:
    """Run the suite's Python (offline tools: build, pip) and check it succeeds."""
    subprocess.run([sys.executable, *map(str, args)], check=True, capture_output=True)


def install(venv: Path, wheel: Path) -> None:
    run_python(
        "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet", "--no-deps",
        "--no-index", "--force-reinstall", wheel,
    )  # fmt: skip


def offline_env(venv: Path, home: Path) -> dict[str, str]:
    """The environment of a user of the installed CLI: their own HOME, no network."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"STREAM_SCAFFOLD_TEMPLATE", "PYTHONPATH", "VIRTUAL_ENV"}
    }
    env.update(
        HOME=str(home),
        # No network: every proxy points at a closed port, git may only use local files.
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        ALL_PROXY="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
        GIT_ALLOW_PROTOCOL="file",
        PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
    )
    return env


@pytest.fixture(scope="session")
def source_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repository with its history (no tags), its ``HEAD`` the working tree on disk."""
    return clone_working_tree(tmp_path_factory.mktemp("wheel-source") / "source")


@pytest.fixture(scope="session")
def current_wheel(source_clone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of `source_clone`: an untagged build, as a build from a branch is."""
    return run_build(source_clone, tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def installed_cli(current_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the CLI installed from `current_wheel`; shared by the tests of installed
    use."""
    venv = make_venv(tmp_path_factory.mktemp("installed") / "venv")
    install(venv, current_wheel)
    return venv
