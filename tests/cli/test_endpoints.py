"""`add-endpoint`, `remove-endpoint` and `list`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .conftest import (
    assert_bad_choice,
    assert_user_error,
    back_out,
    check_project,
    git,
    invoke,
    tree_state,
)

PACKAGE = "live_demo"


def endpoints(project: Path) -> list[dict[str, object]]:
    data = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    return list(data["endpoints"])


def user_edits(project: Path) -> dict[Path, str]:
    """Edit a generator body, the README and create_app; commit; return the markers."""
    module = project / "src" / PACKAGE / "endpoints" / "events.py"
    text = module.read_text(encoding="utf-8")
    marker_module = "# user edit: the generator body is mine"
    # Indent like the first line inside the first nested generator function.
    lines = text.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.lstrip().startswith("def generate"))
    indent = " " * (len(lines[index]) - len(lines[index].lstrip()) + 4)
    lines.insert(index + 1, f"{indent}{marker_module}\n")
    module.write_text("".join(lines), encoding="utf-8")

    readme = project / "README.md"
    marker_readme = "A paragraph the user wrote about their project."
    text = readme.read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    readme.write_text(f"{first}\n\n{marker_readme}\n{rest}", encoding="utf-8")

    init = project / "src" / PACKAGE / "__init__.py"
    marker_init = '    app.config.setdefault("USER_SETTING", "kept")'
    text = init.read_text(encoding="utf-8")
    text = text.replace(
        "    _ensure_secret_key(app)\n", f"    _ensure_secret_key(app)\n{marker_init}\n", 1
    )
    assert marker_init in text, "create_app has no _ensure_secret_key(app) line to edit after"
    init.write_text(text, encoding="utf-8")
    git(project, "commit", "--quiet", "-am", "User edits")
    return {module: marker_module, readme: marker_readme, init: marker_init}


def assert_edits_kept(edits: dict[Path, str]) -> None:
    for file, marker in edits.items():
        assert marker in file.read_text(encoding="utf-8"), file


@pytest.mark.slow
def test_add_every_style_and_format_keeps_user_edits(project: Path) -> None:
    edits = user_edits(project)
    combos = [
        (style, fmt) for style in ("decorator", "wrapper") for fmt in ("sse", "ndjson", "text")
    ]
    for number, (style, fmt) in enumerate(combos):
        name = f"{style}_{fmt}"
        result = invoke(
            "add-endpoint",
            name,
            "--project",
            project,
            "--style",
            style,
            "--format",
            fmt,
            "--session" if number % 2 else "--no-session",
        )
        assert result.exit_code == 0, result
        assert (project / "src" / PACKAGE / "endpoints" / f"{name}.py").is_file()
        assert f'Kind("{name}", ' in (project / "tests" / "test_endpoints.py").read_text()
        assert_edits_kept(edits)
        assert git(project, "status", "--porcelain") == ""
        assert name in git(project, "log", "-1", "--format=%s")
    assert [e["name"] for e in endpoints(project)] == ["events"] + [f"{s}_{f}" for s, f in combos]
    check_project(project)


@pytest.mark.slow
def test_add_then_remove_restores_the_endpoint_set(project: Path) -> None:
    edits = user_edits(project)
    before = endpoints(project)
    assert (
        invoke("add-endpoint", "progress", "--project", project, "--format", "ndjson").exit_code
        == 0
    )
    module = project / "src" / PACKAGE / "endpoints" / "progress.py"
    assert module.is_file()
    result = invoke("remove-endpoint", "progress", "--project", project)
    assert result.exit_code == 0, result
    assert endpoints(project) == before
    assert not module.exists()
    assert 'Kind("progress", ' not in (project / "tests" / "test_endpoints.py").read_text()
    registered = (project / "src" / PACKAGE / "endpoints" / "__init__.py").read_text("utf-8")
    assert "progress" not in registered
    assert_edits_kept(edits)
    assert git(project, "status", "--porcelain") == ""
    check_project(project, lint=False)


def test_add_endpoint_defaults(project: Path) -> None:
    invoke("add-endpoint", "first_wrapped", "--project", project, "--style", "wrapper")
    result = invoke("add-endpoint", "ticker_feed", "--project", project)
    assert result.exit_code == 0, result
    added = endpoints(project)[-1]
    # The style the project used last, /NAME with '-', SSE, the session as the project's
    # endpoints use it.
    assert added == {
        "name": "ticker_feed",
        "path": "/ticker-feed",
        "style": "wrapper",
        "format": "sse",
        "session": True,
        "source": "ticks",
    }


def test_add_endpoint_uses_no_session_when_no_endpoint_does(
    make_project: Callable[..., Path],
) -> None:
    project = make_project("--no-session")
    result = invoke("add-endpoint", "ticks", "--project", project)
    assert result.exit_code == 0, result
    assert endpoints(project)[-1]["session"] is False


def test_add_endpoint_pretend_changes_nothing(base_project: Path) -> None:
    before = tree_state(base_project)
    result = invoke("add-endpoint", "ticks", "--project", base_project, "--pretend")
    assert result.exit_code == 0, result
    assert tree_state(base_project) == before
    assert f"src/{PACKAGE}/endpoints/ticks.py" in result.stdout
    assert "tests/test_endpoints.py" in result.stdout
    # A unified diff of the modified files, e.g. the answers file gaining the record.
    assert "--- a/.copier-answers.yml" in result.stdout
    assert "+    name: ticks" in result.stdout


def test_add_endpoint_no_commit(project: Path) -> None:
    head = git(project, "rev-parse", "HEAD")
    result = invoke("add-endpoint", "ticks", "--project", project, "--no-commit")
    assert result.exit_code == 0, result
    assert git(project, "rev-parse", "HEAD") == head
    status = git(project, "status", "--porcelain", "--untracked-files=all")
    assert f"src/{PACKAGE}/endpoints/ticks.py" in status


def test_add_endpoint_in_current_directory(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    result = invoke("add-endpoint", "here")
    assert result.exit_code == 0, result
    assert endpoints(project)[-1]["name"] == "here"


def test_add_endpoint_checks_the_project_before_asking(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scaffold_cli import _prompts

    monkeypatch.setattr(_prompts, "interactive", lambda defaults: not defaults)
    (project / "notes.txt").write_text("mine\n", encoding="utf-8")
    result = invoke("add-endpoint", "orders", "--project", project, input_="\n" * 6)
    assert_user_error(result, "uncommitted changes in notes.txt")
    assert "URL path" not in result.stdout, result


def test_add_endpoint_defaults_asks_nothing(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scaffold_cli import _prompts

    monkeypatch.setattr(_prompts, "interactive", lambda defaults: not defaults)
    result = invoke("add-endpoint", "orders", "-y", "--source", "channel", "--project", project)
    assert result.exit_code == 0, result
    assert "URL path" not in result.stdout, result
    [added] = [e for e in endpoints(project) if e["name"] == "orders"]
    assert added["source"] == "channel"


def test_list(base_project: Path) -> None:
    result = invoke("list", "--project", base_project)
    assert result.exit_code == 0, result
    for word in ("name", "path", "style", "format", "session", "source", "events", "/events"):
        assert word in result.stdout
    assert "ticks" in result.stdout


@pytest.mark.slow
def test_add_channel_endpoints_keeps_user_edits_and_passes_checks(project: Path) -> None:
    edits = user_edits(project)
    for name, fmt in (("orders", "sse"), ("order_lines", "ndjson")):
        result = invoke(
            "add-endpoint", name, "--project", project, "--source", "channel", "--format", fmt
        )
        assert result.exit_code == 0, result
    assert [(e["name"], e["source"]) for e in endpoints(project)] == [
        ("events", "ticks"),
        ("orders", "channel"),
        ("order_lines", "channel"),
    ]
    package = project / "src" / PACKAGE
    assert (package / "channels.py").is_file()
    assert (package / "brokers" / "_redis.py").is_file()
    assert "channels.subscribe_request" in (package / "endpoints" / "orders.py").read_text()
    assert (project / "tests" / "test_channels.py").is_file()
    assert_edits_kept(edits)
    listed = invoke("list", "--project", project)
    assert "channel" in listed.stdout
    assert git(project, "status", "--porcelain") == ""
    check_project(project)

    # Removing the last channel removes the broker and its tests again.
    for name in ("orders", "order_lines"):
        assert invoke("remove-endpoint", name, "--project", project).exit_code == 0
    assert not (package / "channels.py").exists()
    assert not (project / "tests" / "test_channels.py").exists()
    assert_edits_kept(edits)


BAD_ADD = [
    (["Bad-Name"], "not a snake_case identifier"),
    (["import"], "keyword"),
    (["events"], 'endpoint name "events" is taken by another endpoint'),
    (["ticks", "--path", "/events"], 'endpoint path "/events" is taken by another endpoint'),
    (["ticks", "--path", "ticks"], 'must start with "/"'),
    (
        ["feed", "--source", "channel", "--format", "text"],
        'a channel streams sse or ndjson, not "text"',
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_ADD, ids=[m for _, m in BAD_ADD])
def test_add_endpoint_bad_input(base_project: Path, args: list[str], message: str) -> None:
    before = tree_state(base_project)
    result = invoke("add-endpoint", *args, "--project", base_project)
    assert_user_error(result, message)
    assert tree_state(base_project) == before


@pytest.mark.parametrize(
    ("option", "value", "choices"),
    [
        ("--style", "fancy", ("decorator", "wrapper")),
        ("--format", "csv", ("sse", "ndjson", "text")),
        ("--source", "queue", ("ticks", "channel")),
    ],
)
def test_add_endpoint_bad_choice(
    base_project: Path, option: str, value: str, choices: tuple[str, ...]
) -> None:
    before = tree_state(base_project)
    result = invoke("add-endpoint", "ticks", option, value, "--project", base_project)
    assert_bad_choice(result, option, value, choices)
    assert tree_state(base_project) == before


def test_not_our_project_without_answers(tmp_path: Path) -> None:
    for command in (
        ["add-endpoint", "x"],
        ["remove-endpoint", "x"],
        ["list"],
        ["update"],
        ["check-update"],
    ):
        result = invoke(*command, "--project", tmp_path)
        assert_user_error(result, "not a flask-stream-scaffold project")


def test_not_our_project_other_template(project: Path) -> None:
    (project / ".copier-answers.yml").write_text(
        "_commit: v1.0.0\n_src_path: gh:someone/other-template\nauthor: me\n", "utf-8"
    )
    git(project, "commit", "--quiet", "-am", "Another template's answers")
    before = tree_state(project)
    result = invoke("add-endpoint", "ticks", "--project", project)
    assert_user_error(result, "another template")
    assert tree_state(project) == before


def test_not_a_git_repository(project: Path) -> None:
    shutil.rmtree(project / ".git")
    before = tree_state(project)
    for command in (["add-endpoint", "ticks"], ["remove-endpoint", "events"], ["update"]):
        result = invoke(*command, "--project", project)
        assert_user_error(result, "not a git repository")
    assert tree_state(project) == before


def test_uncommitted_changes(project: Path) -> None:
    (project / "README.md").write_text("changed\n", encoding="utf-8")
    (project / "notes.txt").write_text("untracked\n", encoding="utf-8")
    before = tree_state(project)
    for command in (["add-endpoint", "ticks"], ["remove-endpoint", "events"], ["update"]):
        result = invoke(*command, "--project", project)
        assert_user_error(result, "README.md", "notes.txt", "commit or stash")
    assert tree_state(project) == before


def test_add_endpoint_merge_conflict(project: Path) -> None:
    # Edit exactly where the template adds the new endpoint's registration.
    registry = project / "src" / PACKAGE / "endpoints" / "__init__.py"
    text = registry.read_text(encoding="utf-8")
    assert "events" in text
    registry.write_text(text.replace("events", "events_renamed_by_user"), encoding="utf-8")
    git(project, "commit", "--quiet", "-am", "Rename the registration")
    before = tree_state(project)
    result = invoke("add-endpoint", "ticks", "--project", project)
    assert_user_error(result, "merge conflicts in", "endpoints/__init__.py", "back out with")
    assert "<<<<<<< before updating" in registry.read_text(encoding="utf-8")
    # Backing out as the message says restores exactly the user's committed project.
    back_out(result, project)
    assert tree_state(project) == before


def test_remove_endpoint_refuses_edited_files(project: Path) -> None:
    assert invoke("add-endpoint", "ticks", "--project", project).exit_code == 0
    module = project / "src" / PACKAGE / "endpoints" / "ticks.py"
    module.write_text(module.read_text("utf-8") + "\n# precious user code\n", "utf-8")
    git(project, "commit", "--quiet", "-am", "Edit ticks")
    before = tree_state(project)
    result = invoke("remove-endpoint", "ticks", "--project", project)
    assert_user_error(result, f"src/{PACKAGE}/endpoints/ticks.py", "--force")
    assert tree_state(project) == before
    # --pretend previews it: the refusal as a warning, then what --force would remove.
    result = invoke("remove-endpoint", "ticks", "--project", project, "--pretend")
    assert result.exit_code == 0, result
    assert "Warning: without --force this is refused" in result.stderr
    assert f"src/{PACKAGE}/endpoints/ticks.py" in result.stderr
    assert f"would remove:\n  src/{PACKAGE}/endpoints/ticks.py" in result.stdout
    assert "-# precious user code" in result.stdout
    assert tree_state(project) == before
    result = invoke("remove-endpoint", "ticks", "--project", project, "--force")
    assert result.exit_code == 0, result
    assert not module.exists()
    assert [e["name"] for e in endpoints(project)] == ["events"]


def test_remove_endpoint_bad_input(base_project: Path) -> None:
    before = tree_state(base_project)
    assert_user_error(
        invoke("remove-endpoint", "nope", "--project", base_project), "no endpoint named 'nope'"
    )
    assert_user_error(
        invoke("remove-endpoint", "events", "--project", base_project), "only endpoint"
    )
    assert tree_state(base_project) == before
