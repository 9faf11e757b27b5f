"""Every safeguard of a generated project, broken on purpose, fails the project's own tests.

Each mutant of catalogue.py is applied to a fresh copy of its project kind (rendered once
per test process) and the tests it names are run there, in a fork of a warmed-up
interpreter (forkserver.py). A mutant is killed when a named test fails within `LIMIT`
seconds; one still running then was only caught by hanging, which does not count. The
negative control: on the unmutated projects, every named test passes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import render

from .catalogue import MUTANTS, PROJECTS, Mutant
from .runner import FAILED, PASSED, ForkServer

pytestmark = pytest.mark.slow

# The longest a mutant's tests may run. Killed mutants fail in a second or two; a hang is
# stopped here and reported as a survivor.
LIMIT = 30.0
KILLABLE = [m for m in MUTANTS if m.equivalent is None]
EQUIVALENT = [m for m in MUTANTS if m.equivalent is not None]


class Projects:
    """Each project kind of the catalogue, rendered on first use, copied for each mutant."""

    def __init__(self, template: Path, base: Path) -> None:
        self._template = template
        self._base = base
        self._rendered: dict[str, Path] = {}

    def rendered(self, kind: str) -> Path:
        if kind not in self._rendered:
            self._rendered[kind] = render(self._template, self._base / kind, PROJECTS[kind])
        return self._rendered[kind]

    def copy(self, kind: str, destination: Path) -> Path:
        return Path(shutil.copytree(self.rendered(kind), destination))


@pytest.fixture(scope="session")
def projects(tmp_path_factory: pytest.TempPathFactory, template_snapshot: Path) -> Projects:
    return Projects(template_snapshot, tmp_path_factory.mktemp("mutated-kinds"))


@pytest.fixture(scope="session")
def forkserver() -> Iterator[ForkServer]:
    server = ForkServer()
    yield server
    server.close()


def named_tests(kind: str) -> list[list[str]]:
    """The pytest arguments that run every test the mutants of *kind* name, as they run them.

    A test named with a keyword (e.g. on the in-process broker only) runs with it, unless
    another mutant names it without one.
    """
    mutants = [m for m in KILLABLE if m.project == kind]
    unnarrowed = {test for m in mutants if m.keyword is None for test in m.tests}
    runs: dict[str | None, set[str]] = {None: unnarrowed}
    for m in mutants:
        if m.keyword is not None:
            runs.setdefault(m.keyword, set()).update(set(m.tests) - unnarrowed)
    return [
        [*sorted(tests), *(["-k", keyword] if keyword else [])]
        for keyword, tests in runs.items()
        if tests
    ]


@pytest.mark.parametrize("kind", sorted(PROJECTS))
def test_the_named_tests_pass_on_the_unmutated_project(
    kind: str, projects: Projects, forkserver: ForkServer, tmp_path: Path
) -> None:
    project = projects.copy(kind, tmp_path / "project")
    for tests in named_tests(kind):
        outcome = forkserver.pytest(project, tuple(tests), tmp_path / "pytest.log", LIMIT)
        assert outcome.exit == PASSED, f"{kind}: exit {outcome.exit}\n{outcome.tail()}"


@pytest.mark.parametrize("mutant", KILLABLE, ids=[m.name for m in KILLABLE])
def test_the_projects_own_tests_kill_the_mutant(
    mutant: Mutant, projects: Projects, forkserver: ForkServer, tmp_path: Path
) -> None:
    project = projects.copy(mutant.project, tmp_path / "project")
    mutant.apply(project)
    tests = [*mutant.tests, *(["-k", mutant.keyword] if mutant.keyword else [])]
    outcome = forkserver.pytest(project, tuple(tests), tmp_path / "pytest.log", LIMIT)
    where = f"mutant {mutant.name} ({mutant.broken}), tests {' '.join(tests)}"
    assert outcome.exit is not None, (
        f"{where}: still running after {LIMIT:g} s; a hang is no kill\n{outcome.tail()}"
    )
    assert outcome.exit != PASSED, f"{where}: SURVIVED\n{outcome.tail()}"
    # Anything but a failing test (a collection error, a test id that does not exist) is
    # a mistake of the catalogue, not a kill.
    assert outcome.exit == FAILED, f"{where}: pytest exited with {outcome.exit}\n{outcome.tail()}"


@pytest.mark.parametrize("mutant", EQUIVALENT, ids=[m.name for m in EQUIVALENT])
def test_an_equivalent_mutant_still_points_at_real_code(
    mutant: Mutant, projects: Projects, tmp_path: Path
) -> None:
    mutant.apply(projects.copy(mutant.project, tmp_path / "project"))


def test_the_catalogue_covers_every_project_kind_with_80_mutants_or_more() -> None:
    assert len(KILLABLE) >= 80
    assert {m.project for m in MUTANTS} == set(PROJECTS)
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    assert all(m.tests for m in KILLABLE)
    assert all(m.equivalent and not m.tests for m in EQUIVALENT)
