"""The scaffolder declares every distribution it imports; mypy covers all of its Python."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from packaging.requirements import Requirement

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def imported_modules() -> set[str]:
    """Top-level modules that scaffold_cli imports, outside the standard library."""
    modules: set[str] = set()
    for path in (ROOT / "scaffold_cli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"__future__", "scaffold_cli"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_distribution_is_declared() -> None:
    declared = {normalized(Requirement(text).name) for text in PYPROJECT["project"]["dependencies"]}
    owners = importlib.metadata.packages_distributions()
    undeclared = {
        module: owners[module]
        for module in imported_modules()
        if not {normalized(owner) for owner in owners.get(module, [module])} & declared
    }
    assert not undeclared, f"imported but not in [project] dependencies: {undeclared}"


def test_mypy_covers_every_python_file_of_the_scaffolder() -> None:
    covered = PYPROJECT["tool"]["mypy"]["files"]
    for required in ("scaffold_cli", "migrations", "bench", "hatch_build.py", "tests/conftest.py"):
        assert required in covered


def test_the_build_hook_names_the_template_files_the_cli_names() -> None:
    from scaffold_cli import _template_source

    hook = ast.parse((ROOT / "hatch_build.py").read_text("utf-8"))
    [paths] = [
        ast.literal_eval(node.value)
        for node in hook.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "_TEMPLATE_PATHS" for t in node.targets)
    ]
    assert tuple(paths) == _template_source._TEMPLATE_FILES
    force_included = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert set(force_included) == set(paths)
