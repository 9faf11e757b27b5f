"""The workflows in real repositories: monorepos, refused commits, interrupts, answers given
up front or changed later, and where a command may be run from."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .conftest import (
    assert_bad_choice,
    assert_user_error,
    back_out,
    git,
    invoke,
    snapshot_template,
    tree_state,
)

PACKAGE = "live_demo"


def answers(project: Path) -> dict[str, object]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text("utf-8"))


def user_edit(project: Path) -> Path:
    """An edit of the user's in the app factory, committed."""
    factory = project / "src" / PACKAGE / "__init__.py"
    factory.write_text("# The user's own note.\n" + factory.read_text("utf-8"), "utf-8")
    git(project, "commit", "--quiet", "-am", "User note")
    return factory


# ------------------------------------------------------------------ interrupts
def interrupt_inside_copier(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while Copier writes the new render over the project (its 3rd file)."""
    from copier._main import Worker

    render = Worker._render_file
    calls = []

    def render_then_interrupt(self: Worker, *args: object, **kwargs: object) -> None:
        render(self, *args, **kwargs)  # type: ignore[arg-type]
        if Path(self.dst_path).name == PACKAGE.replace("_", "-"):  # the project, not a scratch
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt

    monkeypatch.setattr(Worker, "_render_file", render_then_interrupt)


def interrupt_after_the_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C once Copier has merged, before anything is committed."""
    from scaffold_cli import _copier

    update = _copier.update

    def update_then_interrupt(*args: object, **kwargs: object) -> None:
        update(*args, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(_copier, "update", update_then_interrupt)


def interrupt_while_committing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C after the changes are staged, as git commit starts."""
    from scaffold_cli import _git

    def stage_then_interrupt(path: Path, message: str) -> tuple[str, bool]:
        _git.git(["add", "--all", "--", "."], path)
        raise KeyboardInterrupt

    monkeypatch.setattr(_git, "commit_paths", stage_then_interrupt)


INTERRUPTS = [interrupt_inside_copier, interrupt_after_the_merge, interrupt_while_committing]


# add-endpoint, remove-endpoint, set and update all go through `Worker._rerender`.
@pytest.mark.parametrize("interrupt", INTERRUPTS, ids=lambda f: f.__name__)
def test_ctrl_c_leaves_the_project_as_it_was(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    interrupt: Callable[[pytest.MonkeyPatch], None],
) -> None:
    user_edit(project)
    before = tree_state(project)
    interrupt(monkeypatch)
    result = invoke("add-endpoint", "ticks", "--project", project)
    assert result.exit_code == 130, result
    assert "Aborted." in result.stderr
    assert tree_state(project) == before


def test_a_rejecting_hook_keeps_the_result_and_says_how_to_undo(project: Path) -> None:
    hook = project / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'lint says no' >&2\nexit 1\n", "utf-8")
    hook.chmod(0o755)
    before = tree_state(project)
    result = invoke("add-endpoint", "ticks", "--project", project)
    assert_user_error(result, "lint says no", "staged but not committed", "git restore")
    # What changed is printed, and is there, staged.
    assert f"src/{PACKAGE}/endpoints/ticks.py" in result.stdout
    assert (project / "src" / PACKAGE / "endpoints" / "ticks.py").is_file()
    assert git(project, "rev-parse", "HEAD") == before["<HEAD>"]
    # The undo command the message gives restores the project exactly.
    [error] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    undo = error.split("undo them with '", 1)[1].split("'", 1)[0]
    subprocess.run(undo, shell=True, cwd=project, check=True)
    assert tree_state(project) == before


def test_new_with_a_rejecting_hook_keeps_the_project_staged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "pre-commit").write_text("#!/bin/sh\necho 'policy: no' >&2\nexit 1\n", "utf-8")
    (hooks / "pre-commit").chmod(0o755)
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.hooksPath")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", str(hooks))
    destination = tmp_path / "proj"
    result = invoke("new", destination, "-y")
    assert_user_error(result, "policy: no", "staged", "--no-git")
    assert (destination / ".copier-answers.yml").is_file()
    staged = git(destination, "diff", "--cached", "--name-only")
    assert ".copier-answers.yml" in staged


def test_new_failing_in_git_removes_created_parents_and_suggests_no_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scaffold_cli import _git

    def refuse(path: Path) -> None:
        raise _git.GitError("init", "git init failed: cannot create the repository")

    monkeypatch.setattr(_git, "init", refuse)
    result = invoke("new", tmp_path / "a" / "b" / "proj", "-y")
    assert_user_error(result, "git init failed", "--no-git")
    assert list(tmp_path.iterdir()) == []


def test_conflict_markers_in_committed_files_are_refused(project: Path) -> None:
    readme = project / "README.md"
    readme.write_text(
        readme.read_text("utf-8") + "<<<<<<< before updating\nmine\n=======\ntheirs\n"
        ">>>>>>> after updating\n",
        "utf-8",
    )
    git(project, "commit", "--quiet", "-am", "Committed a conflict by mistake")
    before = tree_state(project)
    for command in (["add-endpoint", "ticks"], ["remove-endpoint", "events"], ["update"]):
        assert_user_error(invoke(*command, "--project", project), "conflict markers", "README.md")
    assert tree_state(project) == before


# ---------------------------------------------------------------- monorepos
def enclosing_repository(top: Path) -> Path:
    """An empty git repository at *top*, for projects made inside it."""
    top.mkdir()
    git(top, "init", "--quiet", "--initial-branch=main")
    return top


def test_monorepo_no_nested_repository_and_only_the_projects_paths_committed(
    tmp_path: Path,
) -> None:
    top = enclosing_repository(tmp_path / "mono")
    (top / "other.txt").write_text("staged by the user, not ready\n", "utf-8")
    git(top, "add", "other.txt")
    project = top / "services" / "chat"

    result = invoke("new", project, "-y", "--endpoint", "ticks")
    assert result.exit_code == 0, result
    assert "inside the git repository" in result.stdout
    assert not (project / ".git").exists()
    committed = git(top, "show", "--name-only", "--format=", "HEAD").split()
    assert "services/chat/.copier-answers.yml" in committed
    assert "other.txt" not in committed

    result = invoke("add-endpoint", "prices", "--project", project)
    assert result.exit_code == 0, result
    assert "other.txt" in result.stderr  # warned: it stays staged, out of the commit
    committed = git(top, "show", "--name-only", "--format=", "HEAD").split()
    assert committed
    assert all(name.startswith("services/chat/") for name in committed), committed
    assert git(top, "diff", "--cached", "--name-only").split() == ["other.txt"]


def test_a_folder_the_enclosing_repository_ignores_gets_a_repository_of_its_own(
    tmp_path: Path,
) -> None:
    top = enclosing_repository(tmp_path / "tool")
    (top / ".gitignore").write_text("/scratch/\n", "utf-8")
    project = top / "scratch" / "demo"

    result = invoke("new", project, "-y")
    assert result.exit_code == 0, result
    assert (project / ".git").is_dir()
    assert git(project, "rev-parse", "--show-toplevel").strip() == str(project.resolve())
    assert git(project, "status", "--porcelain") == ""
    assert git(top, "status", "--porcelain") == "?? .gitignore\n"  # the outer one untouched


def test_commands_run_from_a_subdirectory(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project / "src" / PACKAGE / "endpoints")
    listed = invoke("list", "--json")
    assert [e["name"] for e in json.loads(listed.stdout)] == ["events"]
    # The project commands open the project found upward (and check it) the same way.
    result = invoke("set", "server=gthread")
    assert result.exit_code == 0, result
    assert "Nothing to change" in result.stdout
    assert invoke("check-update").exit_code == 0


# ------------------------------------------------------------- new, up front
def test_new_from_a_data_file_with_several_endpoints(tmp_path: Path) -> None:
    data = tmp_path / "answers.yml"
    data.write_text(
        "server: gevent\n"
        "endpoints:\n"
        "  - {name: tokens, format: ndjson}\n"
        "  - {name: build_log, format: text, style: wrapper, path: /logs}\n"
        "  - {name: prices, session: true}\n",
        "utf-8",
    )
    destination = tmp_path / "proj"
    result = invoke(
        "new", destination, "--data-file", data, "--data", "proxy=none", "-d", "description=X"
    )
    assert result.exit_code == 0, result
    recorded = answers(destination)
    assert recorded["server"] == "gevent"
    assert recorded["proxy"] == "none"  # the older nginx answer, as --no-nginx means
    assert "nginx" not in recorded
    assert recorded["description"] == "X"
    assert recorded["endpoints"] == [
        {"name": "tokens", "path": "/tokens", "style": "decorator", "format": "ndjson",
         "session": False, "source": "ticks"},
        {"name": "build_log", "path": "/logs", "style": "wrapper", "format": "text",
         "session": False, "source": "ticks"},
        {"name": "prices", "path": "/prices", "style": "wrapper", "format": "sse",
         "session": True, "source": "ticks"},
    ]  # fmt: skip
    for name in ("tokens", "build_log", "prices"):
        assert (destination / "src" / "proj" / "endpoints" / f"{name}.py").is_file()
    assert len(git(destination, "log", "--format=%H").split()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "server"], "KEY=VALUE"),
        (["--data", "colour=blue"], "no question colour"),
        (["--data", "_src_path=/x"], "Copier's own settings"),
        (["--data", "endpoints=[{path: /x}]"], "needs at least a name"),
        (["--data", "endpoints=[{name: a}]", "--endpoint", "b"], "not both"),
    ],
)
def test_new_bad_data(tmp_path: Path, args: list[str], message: str) -> None:
    assert_user_error(invoke("new", tmp_path / "p", "-y", *args), message)
    assert not (tmp_path / "p").exists()


def test_new_dot_takes_the_directory_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "My Live Demo").mkdir()
    monkeypatch.chdir(tmp_path / "My Live Demo")
    result = invoke("new", ".", "-y", "--no-git")
    assert result.exit_code == 0, result
    assert answers(tmp_path / "My Live Demo")["project_name"] == "My-Live-Demo"
    assert answers(tmp_path / "My Live Demo")["package_name"] == "my_live_demo"


def test_next_steps_quote_paths_and_bad_folder_names_ask_for_name(tmp_path: Path) -> None:
    destination = tmp_path / "with space" / "live demo"
    result = invoke("new", destination, "-y", "--no-git")
    assert result.exit_code == 0, result
    assert f"cd '{destination}'" in result.stdout
    assert_user_error(invoke("new", tmp_path / "ünï", "-y"), "--name")
    assert not (tmp_path / "ünï").exists()


def test_new_refuses_a_template_that_is_not_this_one(base_project: Path, tmp_path: Path) -> None:
    result = invoke("new", tmp_path / "proj", "-y", "--template", base_project)
    assert_user_error(result, "not a flask-stream-scaffold template")
    assert not (tmp_path / "proj").exists()


def test_a_copier_template_with_the_same_questions_is_accepted(tmp_path: Path) -> None:
    fork = snapshot_template(tmp_path / "fork")
    git(fork, "init", "--quiet", "--initial-branch=main")
    git(fork, "add", "--all")
    git(fork, "commit", "--quiet", "-m", "A fork")
    result = invoke("new", tmp_path / "proj", "-y", "--template", fork)
    assert result.exit_code == 0, result


# ------------------------------------------------------- changing answers
def test_set_rerenders_and_keeps_user_edits(project: Path) -> None:
    factory = user_edit(project)
    result = invoke("set", "server=gevent", "proxy=caddy", "--project", project)
    assert result.exit_code == 0, result
    assert '"gevent"' in (project / "deploy" / "gunicorn.conf.py").read_text("utf-8")
    assert not (project / "deploy" / "nginx.conf").exists()
    assert (project / "deploy" / "Caddyfile").exists()
    assert "# The user's own note." in factory.read_text("utf-8")
    recorded = answers(project)
    assert recorded["server"] == "gevent"
    assert recorded["proxy"] == "caddy"
    assert git(project, "log", "-1", "--format=%s").strip() == "Set server=gevent, proxy=caddy"
    assert git(project, "status", "--porcelain") == ""
    again = invoke("set", "server=gevent", "--project", project)
    assert again.exit_code == 0, again
    assert "Nothing to change" in again.stdout


def test_a_hand_edited_answer_is_noticed_and_rendered_by_set(project: Path) -> None:
    factory = user_edit(project)
    path = project / ".copier-answers.yml"
    path.write_text(path.read_text("utf-8").replace("server: gthread", "server: gevent"), "utf-8")
    git(project, "commit", "--quiet", "-am", "Switch to gevent by hand")
    gunicorn = project / "deploy" / "gunicorn.conf.py"
    assert '"gevent"' not in gunicorn.read_text("utf-8")  # out of step

    update = invoke("update", "--project", project)
    assert update.exit_code == 0, update
    assert "server changed in .copier-answers.yml" in update.stderr
    assert "stream-scaffold set" in update.stderr

    result = invoke("set", "--project", project)
    assert result.exit_code == 0, result
    assert '"gevent"' in gunicorn.read_text("utf-8")
    assert "# The user's own note." in factory.read_text("utf-8")
    assert git(project, "log", "-1", "--format=%s").strip() == "Set server=gevent"
    assert (
        git(project, "log", "-1", "--format=%P").strip()
        == git(project, "rev-parse", "HEAD~1").strip()
    )  # one commit on top of the user's, no leftover helper commit
    assert "Switch to gevent by hand" in git(project, "log", "-2", "--format=%s")
    assert git(project, "status", "--porcelain") == ""
    again = invoke("update", "--project", project)
    assert "changed in .copier-answers.yml" not in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["server=tornado"], "unknown server 'tornado'"),
        (["proxy=squid"], "proxy: 'squid' is not in ['nginx', 'caddy', 'apache', 'none']"),
        (["colour=blue"], "no answer named 'colour'"),
        (["endpoints=[]"], "add-endpoint"),
        (["server"], "KEY=VALUE"),
    ],
)
def test_set_bad_input(base_project: Path, args: list[str], message: str) -> None:
    before = tree_state(base_project)
    assert_user_error(invoke("set", *args, "--project", base_project), message)
    assert tree_state(base_project) == before


# --------------------------------------------------------- options, output
def test_pretend_shows_the_content_of_added_files(base_project: Path) -> None:
    before = tree_state(base_project)
    result = invoke("add-endpoint", "ticks", "--project", base_project, "--pretend")
    assert result.exit_code == 0, result
    assert f"+++ b/src/{PACKAGE}/endpoints/ticks.py" in result.stdout
    assert "+@bp.get" in result.stdout or "+from flask import" in result.stdout
    assert tree_state(base_project) == before


def test_add_and_remove_take_conflict_rej(project: Path) -> None:
    registry = project / "src" / PACKAGE / "endpoints" / "__init__.py"
    registry.write_text(registry.read_text("utf-8").replace("events", "events_mine"), "utf-8")
    git(project, "commit", "--quiet", "-am", "Rename the registration")
    before = tree_state(project)
    result = invoke("add-endpoint", "ticks", "--project", project, "--conflict", "rej")
    assert_user_error(result, "merge conflicts in", "endpoints/__init__.py")
    assert registry.read_text("utf-8") == git(
        project, "show", f"HEAD:src/{PACKAGE}/endpoints/__init__.py"
    )
    assert "ticks" in registry.with_name("__init__.py.rej").read_text("utf-8")
    back_out(result, project)
    assert tree_state(project) == before
    result = invoke("remove-endpoint", "events", "--project", project, "--conflict", "bogus")
    assert_bad_choice(result, "--conflict", "bogus", ("inline", "rej"))


def test_list_is_plain_and_never_truncated(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    long_name = "a_rather_long_endpoint_name_for_narrow_terminals"
    record = {
        "name": long_name,
        "path": "/" + long_name.replace("_", "-"),
        "style": "wrapper",
        "format": "text",
        "session": False,
        "source": "ticks",
    }
    path = project / ".copier-answers.yml"
    recorded = yaml.safe_load(path.read_text("utf-8"))
    recorded["endpoints"].append(record)
    path.write_text(yaml.safe_dump(recorded), "utf-8")
    monkeypatch.setenv("COLUMNS", "30")
    result = invoke("list", "--project", project)
    assert result.exit_code == 0, result
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "path", "style", "format", "session", "source"]
    assert lines[2].split() == [long_name, record["path"], "wrapper", "text", "no", "ticks"]
    as_json = json.loads(invoke("list", "--project", project, "--json").stdout)
    assert as_json[1] == record
