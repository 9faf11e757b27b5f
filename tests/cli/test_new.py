"""`stream-scaffold new` (and the app-level options)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scaffold_cli import __version__

from .conftest import (
    BIN,
    assert_bad_choice,
    assert_user_error,
    commit_and_tag,
    git,
    invoke,
    run_script,
    snapshot_template,
)


def answers(project: Path) -> dict[str, object]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"stream-scaffold {__version__}"


def test_python_dash_m_works() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scaffold_cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert __version__ in proc.stdout


def test_new_defaults_renders_and_commits(base_project: Path, template_repo: Path) -> None:
    recorded = answers(base_project)
    assert recorded["_commit"] == "v0.1.0"
    assert recorded["_src_path"] == str(template_repo)
    assert recorded["project_name"] == "live-demo"
    assert recorded["package_name"] == "live_demo"
    package = base_project / "src" / "live_demo"
    assert (package / "endpoints" / "events.py").is_file()
    assert (base_project / "tests" / "test_endpoints.py").is_file()
    log = git(base_project, "log", "--format=%s").splitlines()
    assert len(log) == 1
    assert "live-demo" in log[0]
    assert git(base_project, "status", "--porcelain") == ""


def test_new_prints_next_steps(tmp_path: Path) -> None:
    result = invoke("new", tmp_path / "demo", "-y")
    assert result.exit_code == 0, result
    assert "Next steps" in result.stdout
    assert f"cd {tmp_path / 'demo'}" in result.stdout


def test_new_with_every_option(tmp_path: Path) -> None:
    destination = tmp_path / "dest"
    result = invoke(
        "new",
        destination,
        "-y",
        "--name",
        "Ticker.Board",
        "--package",
        "board",
        "--description",
        "Prices, live",
        "--endpoint",
        "prices",
        "--style",
        "wrapper",
        "--format",
        "ndjson",
        "--path",
        "/api/prices",
        "--no-session",
        "--server",
        "gevent",
        "--no-nginx",
    )
    assert result.exit_code == 0, result
    recorded = answers(destination)
    assert recorded["project_name"] == "Ticker.Board"
    assert recorded["package_name"] == "board"
    assert recorded["description"] == "Prices, live"
    assert recorded["server"] == "gevent"
    assert recorded["proxy"] == "none"
    assert "nginx" not in recorded
    assert recorded["endpoints"] == [
        {
            "name": "prices",
            "path": "/api/prices",
            "style": "wrapper",
            "format": "ndjson",
            "session": False,
            "source": "ticks",
        }
    ]
    assert (destination / "src" / "board" / "endpoints" / "prices.py").is_file()
    assert not (destination / "deploy" / "nginx.conf").exists()


@pytest.mark.parametrize(
    ("options", "proxy", "config"),
    [
        (["--proxy", "caddy"], "caddy", "Caddyfile"),
        (["--proxy", "apache"], "apache", "apache.conf"),
        (["--nginx"], "nginx", "nginx.conf"),
        (["--proxy", "nginx", "--nginx"], "nginx", "nginx.conf"),
    ],
)
def test_new_with_each_proxy(tmp_path: Path, options: list[str], proxy: str, config: str) -> None:
    destination = tmp_path / "fronted"
    result = invoke("new", destination, "-y", "--no-git", *options)
    assert result.exit_code == 0, result
    assert answers(destination)["proxy"] == proxy
    assert sorted(p.name for p in (destination / "deploy").iterdir()) == sorted(
        ["gunicorn.conf.py", "grafana-dashboard.json", "dev-cert.sh", config]
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--proxy", "caddy", "--no-nginx"], "--no-nginx means --proxy none"),
    ],
)
def test_new_refuses_a_bad_proxy(tmp_path: Path, options: list[str], message: str) -> None:
    result = invoke("new", tmp_path / "never", "-y", *options)
    assert_user_error(result, message)
    assert not (tmp_path / "never").exists()


def test_new_pretend_writes_nothing(tmp_path: Path) -> None:
    destination = tmp_path / "ghost"
    result = invoke("new", destination, "-n", "-y", "--endpoint", "ticks")
    assert result.exit_code == 0, result
    assert not destination.exists()
    assert "src/ghost/endpoints/ticks.py" in result.stdout
    assert "tests/test_endpoints.py" in result.stdout


def test_new_no_git(tmp_path: Path) -> None:
    result = invoke("new", tmp_path / "plain", "-y", "--no-git")
    assert result.exit_code == 0, result
    assert not (tmp_path / "plain" / ".git").exists()
    assert (tmp_path / "plain" / ".copier-answers.yml").is_file()


def test_new_into_empty_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = invoke("new", tmp_path / "empty", "-y")
    assert result.exit_code == 0, result
    assert (tmp_path / "empty" / ".copier-answers.yml").is_file()


def test_new_commits_without_a_git_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_config = tmp_path / "gitconfig"
    empty_config.write_text("", encoding="utf-8")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty_config))
    # Make sure git cannot guess an identity from the machine either.
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.useConfigOnly")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "true")
    result = invoke("new", tmp_path / "anon", "-y")
    assert result.exit_code == 0, result
    author = subprocess.run(
        ["git", "log", "-1", "--format=%an <%ae>"],
        cwd=tmp_path / "anon",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert author == "flask-stream-scaffold <flask-stream-scaffold@localhost>"
    # and says so, with the way to set one's own
    assert "committed as flask-stream-scaffold <flask-stream-scaffold@localhost>" in result.stderr
    assert "git config --global user.name" in result.stderr
    assert empty_config.read_text(encoding="utf-8") == ""
    local_config = (tmp_path / "anon" / ".git" / "config").read_text(encoding="utf-8")
    assert "[user]" not in local_config


def test_new_asks_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scaffold_cli import _prompts

    monkeypatch.setattr(_prompts, "interactive", lambda defaults: not defaults)
    answers_typed = "\n".join(
        [
            "chat",  # project name
            "",  # package name: default "chat"
            "Live chat",  # description
            "bogus",  # server: refused, asked again
            "gevent",
            "none",  # reverse proxy
            "messages",  # endpoint name
            "",  # path: default /messages
            "",  # source: default ticks
            "text",  # format
            "wrapper",  # style
            "n",  # session
            "y",  # another endpoint, asked in the same order
            "presence",
            "/who",
            "channel",  # source
            "text",  # format: refused for a channel, asked again
            "ndjson",
            "",  # style: default, as the first one
            "y",  # session
            "n",  # no more endpoints
        ]
    )
    result = invoke("new", tmp_path / "chat", input_=answers_typed + "\n")
    assert result.exit_code == 0, result
    assert "Format (sse|ndjson|text) [sse]:" in result.stdout
    assert "Format (sse|ndjson) [sse]:" in result.stdout
    assert 'a channel streams sse or ndjson, not "text"' in result.stderr
    recorded = answers(tmp_path / "chat")
    assert recorded["description"] == "Live chat"
    assert recorded["server"] == "gevent"
    assert recorded["proxy"] == "none"
    assert recorded["endpoints"] == [
        {
            "name": "messages",
            "path": "/messages",
            "style": "wrapper",
            "format": "text",
            "session": False,
            "source": "ticks",
        },
        {
            "name": "presence",
            "path": "/who",
            "style": "wrapper",
            "format": "ndjson",
            "session": True,
            "source": "channel",
        },
    ]


def test_a_given_channel_is_checked_with_the_format_given_before_any_question(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scaffold_cli import _prompts

    monkeypatch.setattr(_prompts, "interactive", lambda defaults: not defaults)
    # Project name, package, description, worker, proxy, endpoint name, path: then the
    # given format is refused for the given source, before the questions that follow.
    typed = "\n" * 7
    result = invoke(
        "new", tmp_path / "bad", "--source", "channel", "--format", "text", input_=typed
    )
    assert_user_error(result, 'a channel streams sse or ndjson, not "text"')
    assert "Style" not in result.stdout, result
    assert not (tmp_path / "bad").exists()


BAD_INPUT = [
    (["--name", "-oops"], "project name"),
    (["--name", "my project"], "project name"),
    (["--package", "Bad-Package"], "package name"),
    (["--package", "class"], "keyword"),
    (["--package", "flask"], "shadow"),
    (["--package", "json"], "shadow"),
    (["--endpoint", "Bad-Name"], "not a snake_case identifier"),
    (["--endpoint", "lambda"], "keyword"),
    (["--path", "events"], 'must start with "/"'),
    (["--source", "channel", "--format", "text"], 'a channel streams sse or ndjson, not "text"'),
]


@pytest.mark.parametrize(("options", "message"), BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_new_bad_input(tmp_path: Path, options: list[str], message: str) -> None:
    destination = tmp_path / "bad"
    result = invoke("new", destination, "-y", *options)
    assert_user_error(result, message)
    assert not destination.exists()


BAD_CHOICES = [
    ("--style", "inline", ("decorator", "wrapper")),
    ("--format", "xml", ("sse", "ndjson", "text")),
    ("--server", "sync", ("gthread", "gevent")),
    ("--proxy", "squid", ("nginx", "caddy", "apache", "none")),
]


@pytest.mark.parametrize(("option", "value", "choices"), BAD_CHOICES)
def test_new_bad_choice(tmp_path: Path, option: str, value: str, choices: tuple[str, ...]) -> None:
    destination = tmp_path / "bad"
    result = invoke("new", destination, "-y", option, value)
    assert_bad_choice(result, option, value, choices)
    assert not destination.exists()


def test_new_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine", encoding="utf-8")
    result = invoke("new", tmp_path / "busy", "-y")
    assert_user_error(result, "already exists and is not empty")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["keep.txt"]


@pytest.fixture(scope="module")
def broken_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template with one file that fails to render half-way through."""
    repo = snapshot_template(tmp_path_factory.mktemp("broken") / "repo")
    (repo / "template" / "zz_broken.txt.jinja").write_text("{{ undefined_thing(", "utf-8")
    commit_and_tag(repo, "v0.1.0", "Broken template")
    return repo


def test_new_failed_render_leaves_nothing(tmp_path: Path, broken_template: Path) -> None:
    result = invoke("new", tmp_path / "half", "-y", "--template", broken_template)
    assert_user_error(result, "rendering the template failed")
    assert not (tmp_path / "half").exists()


def test_new_failed_render_empties_an_existing_empty_dir(
    tmp_path: Path, broken_template: Path
) -> None:
    (tmp_path / "empty").mkdir()
    result = invoke("new", tmp_path / "empty", "-y", "--template", broken_template)
    assert_user_error(result)
    assert list((tmp_path / "empty").iterdir()) == []


def test_new_unknown_template_version(tmp_path: Path) -> None:
    result = invoke("new", tmp_path / "nover", "-y", "--vcs-ref", "v9.9.9")
    assert_user_error(result)
    assert not (tmp_path / "nover").exists()


def test_new_with_explicit_template_and_ref(tmp_path: Path, template_repo: Path) -> None:
    result = invoke("new", tmp_path / "p", "-y", "--template", template_repo, "--vcs-ref", "v0.1.0")
    assert result.exit_code == 0, result
    assert answers(tmp_path / "p")["_commit"] == "v0.1.0"


# ------------------------------------------------------- the console script
def test_console_script_new(tmp_path: Path) -> None:
    result = run_script("new", "webapp", "--defaults", cwd=tmp_path)
    assert result.exit_code == 0, result
    project = tmp_path / "webapp"
    recorded = answers(project)
    # A relative destination still records an absolute template location.
    assert Path(str(recorded["_src_path"])).is_absolute()
    assert git(project, "status", "--porcelain") == ""
    listing = run_script("list", cwd=project)
    assert listing.exit_code == 0
    assert "/events" in listing.stdout


def test_console_script_bad_input(tmp_path: Path) -> None:
    result = run_script("new", "webapp", "-y", "--format", "xml", cwd=tmp_path)
    assert_bad_choice(result, "--format", "xml", ("sse", "ndjson", "text"))
    assert not (tmp_path / "webapp").exists()


def test_help_does_not_import_copier() -> None:
    code = (
        "import sys\n"
        "from scaffold_cli._cli import app\n"
        "from typer.testing import CliRunner\n"
        "CliRunner().invoke(app, ['--help'])\n"
        "CliRunner().invoke(app, ['--version'])\n"
        "print('copier' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ}
    ).stdout
    assert out.strip() == "False"
    assert (BIN / "stream-scaffold").exists()
