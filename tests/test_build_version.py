"""The version every wheel build gets from git (hatch_build.py): distinct per commit and
ordered, so that ``pip install -U`` of a newer build upgrades."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from packaging.version import Version

from tests.conftest import ROOT, git


def load_hook() -> object:
    spec = importlib.util.spec_from_file_location("hatch_build_under_test", ROOT / "hatch_build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_versions_from_git_are_distinct_and_ordered(tmp_path: Path) -> None:
    version_from_git = load_hook().version_from_git  # type: ignore[attr-defined]
    repo = tmp_path / "repo"
    repo.mkdir()
    assert version_from_git(repo, "0.1.0") is None  # not a repository: PKG-INFO decides

    git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "f").write_text("1\n")
    git(repo, "add", "f")
    git(repo, "commit", "--quiet", "-m", "one")
    seen = [version_from_git(repo, "0.1.0")]
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "two")
    seen.append(version_from_git(repo, "0.1.0"))
    git(repo, "tag", "v0.1.0")
    seen.append(version_from_git(repo, "0.1.0"))
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "three")
    seen.append(version_from_git(repo, "0.1.0"))
    (repo / "f").write_text("changed, not committed\n")
    seen.append(version_from_git(repo, "0.1.0"))

    assert seen[0].startswith("0.1.0.dev1+g")
    assert seen[1].startswith("0.1.0.dev2+g")
    assert seen[2] == "0.1.0"
    assert seen[3].startswith("0.1.0.post1+g")
    assert seen[4].startswith(f"{seen[3]}.d")
    versions = [Version(v) for v in seen]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
