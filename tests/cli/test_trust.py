"""Only the installed template runs its own code (tasks, migrations) without ``--trust``.

A project's answers file names the template it came from; a hostile or merely unknown one
must not get to run commands because a user typed ``stream-scaffold update``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import assert_user_error, commit_and_tag, git, invoke, snapshot_template, tree_state


@pytest.fixture(scope="module")
def marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file the crafted template's task appends its destination to."""
    return tmp_path_factory.mktemp("marker") / "tasks-ran"


@pytest.fixture(scope="module")
def crafted_template(tmp_path_factory: pytest.TempPathFactory, marker: Path) -> Path:
    """Our template at v0.1.0, then v0.2.0 with a task that records where it ran."""
    repo = snapshot_template(tmp_path_factory.mktemp("crafted") / "repo")
    commit_and_tag(repo, "v0.1.0", "Template v0.1.0")
    config = repo / "copier.yml"
    task = f'_tasks:\n  - "echo {{{{ _copier_conf.dst_path }}}} >> {marker}"\n'
    config.write_text(task + config.read_text("utf-8"), "utf-8")
    commit_and_tag(repo, "v0.2.0", "Template v0.2.0 with a task")
    return repo


def ran_in(marker: Path) -> list[str]:
    return marker.read_text("utf-8").split() if marker.exists() else []


def test_new_refuses_a_foreign_template_with_tasks(
    tmp_path: Path, crafted_template: Path, marker: Path
) -> None:
    destination = tmp_path / "proj"
    result = invoke("new", destination, "-y", "--template", crafted_template)
    assert_user_error(result, "not the one that ships with stream-scaffold", "tasks", "--trust")
    assert str(destination) not in ran_in(marker)
    assert not destination.exists()
    # The control: with --trust the very same task runs.
    result = invoke("new", destination, "-y", "--template", crafted_template, "--trust")
    assert result.exit_code == 0, result
    assert str(destination) in ran_in(marker)


def test_update_refuses_a_project_pointed_at_another_template(
    project: Path, crafted_template: Path, marker: Path
) -> None:
    answers = project / ".copier-answers.yml"
    text = answers.read_text("utf-8")
    [recorded] = [line for line in text.splitlines() if line.startswith("_src_path:")]
    answers.write_text(text.replace(recorded, f"_src_path: {crafted_template}"), "utf-8")
    git(project, "commit", "--quiet", "-am", "Point the project at another template")
    before = tree_state(project)
    result = invoke("update", "--project", project)
    assert_user_error(result, "not the one that ships with stream-scaffold", "tasks", "--trust")
    assert tree_state(project) == before
    assert str(project) not in ran_in(marker)

    result = invoke("update", "--project", project, "--trust")
    assert result.exit_code == 0, result
    assert str(project) in ran_in(marker)

    # Now on the version with the task: re-rendering for an endpoint would run it too.
    marker.unlink()
    before = tree_state(project)
    result = invoke("add-endpoint", "ticks", "--project", project)
    assert_user_error(result, "not the one that ships with stream-scaffold", "--trust")
    assert tree_state(project) == before
    assert not marker.exists()

    result = invoke("add-endpoint", "ticks", "--project", project, "--trust")
    assert result.exit_code == 0, result
    marker.unlink()
    before = tree_state(project)
    result = invoke("remove-endpoint", "ticks", "--project", project)
    assert_user_error(result, "not the one that ships with stream-scaffold", "--trust")
    assert tree_state(project) == before
    assert not marker.exists()
