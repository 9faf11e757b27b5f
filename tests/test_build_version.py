"""Versions and releases (hatch_build.py, scaffold_cli/_releases.py, scripts/release): every
build's version increases along the history, with or without git tags, so that
``pip install -U`` of a newer build upgrades; a release is one command; the distributions are
ready to publish."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from packaging.version import Version

from scaffold_cli import _releases
from tests.conftest import ROOT, clone_working_tree, git

FIRST_RELEASE_COMMIT = "a931090"
"""The commit the first wheel, 0.1.0, was built from, before releases were tagged."""


def load_hook(path: Path = ROOT / "hatch_build.py") -> ModuleType:
    """The build hook of this checkout, or the one at ``path`` (an older one)."""
    name = f"hatch_build_under_test_{path.parent.name}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def version_of(repo: Path) -> str:
    version: str | None = load_hook().version_from_git(repo, "0.1.0")
    assert version is not None
    return version


def changelog(*headings: str) -> str:
    sections = "".join(f"\n## {heading}\n\n- An entry.\n" for heading in headings)
    return f"# Changelog\n\n## [Unreleased]\n{sections}"


def commit_changelog(repo: Path, text: str, message: str) -> str:
    (repo / "CHANGELOG.md").write_text(text, "utf-8")
    git(repo, "add", "CHANGELOG.md")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def test_versions_follow_the_release_record_with_or_without_tags(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    assert load_hook().version_from_git(repo, "0.1.0") is None  # not a repository: PKG-INFO
    git(repo, "init", "--quiet", "--initial-branch=main")
    first = commit_changelog(repo, changelog(), "one")
    seen = {"before any release": version_of(repo)}
    # The first release was made before the changelog: its heading names its commit.
    commit_changelog(repo, changelog(f"[0.1.0] - 2026-11-23 (commit {first[:7]})"), "two")
    seen["a commit after 0.1.0"] = version_of(repo)
    # A later release is the commit that adds its heading (what scripts/release makes).
    release = commit_changelog(
        repo, changelog("[0.2.0] - 2026-12-10", f"[0.1.0] - 2026-11-23 (commit {first[:7]})"), "3"
    )
    seen["the 0.2.0 commit"] = version_of(repo)
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "four")
    seen["a commit after 0.2.0"] = version_of(repo)
    with (repo / "CHANGELOG.md").open("a", encoding="utf-8") as file:
        file.write("- Not committed.\n")
    seen["uncommitted changes"] = version_of(repo)
    git(repo, "checkout", "--quiet", "--", "CHANGELOG.md")

    assert seen["before any release"].startswith("0.1.0.dev1+g")
    assert seen["a commit after 0.1.0"].startswith("0.2.0.dev1+g")
    assert seen["the 0.2.0 commit"] == "0.2.0"
    assert seen["a commit after 0.2.0"].startswith("0.3.0.dev1+g")
    assert seen["uncommitted changes"].startswith(f"{seen['a commit after 0.2.0']}.d")
    versions = [Version(v) for v in seen.values()]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)

    # No tag was needed: a repository that has them names every commit the same way.
    git(repo, "tag", "v0.2.0", release)
    assert version_of(repo) == seen["a commit after 0.2.0"]
    # A tag is honoured, also for a version the changelog does not list.
    git(repo, "tag", "v1.0.0")
    assert version_of(repo) == "1.0.0"


def test_this_repository_records_its_first_release_and_builds_after_it(tmp_path: Path) -> None:
    sections = _releases.parse((ROOT / "CHANGELOG.md").read_text("utf-8"))
    assert sections[0].title == "Unreleased"
    first = _releases.releases(sections)[-1]
    assert (first.title, first.commit) == ("0.1.0", FIRST_RELEASE_COMMIT)
    # A fresh clone, as CI makes it: no tags.
    repo = tmp_path / "repo"
    git(tmp_path, "clone", "--quiet", "--no-tags", "--shared", str(ROOT), str(repo))
    commits = _releases.release_commits(sections, _releases.git_runner(repo))
    assert commits["0.1.0"].startswith(FIRST_RELEASE_COMMIT)
    assert Version(version_of(repo)) > Version("0.1.0")
    # The negative control: the hook before the release record named the same commit
    # 0.1.0.devN, which sorts before the first release.
    old = tmp_path / "old" / "hatch_build.py"
    old.parent.mkdir()
    old.write_text(git(ROOT, "show", "1a62900:hatch_build.py"), "utf-8")
    assert Version(load_hook(old).version_from_git(repo, "0.1.0")) < Version("0.1.0")


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repository, as it is on disk, in a clone without tags."""
    return clone_working_tree(tmp_path_factory.mktemp("release") / "repo")


def run_release(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    identity = {"GIT_AUTHOR_NAME": "Release Manager", "GIT_AUTHOR_EMAIL": "rm@example.invalid"}
    identity |= {
        "GIT_COMMITTER_NAME": "Release Manager",
        "GIT_COMMITTER_EMAIL": "rm@example.invalid",
    }
    return subprocess.run(
        [sys.executable, clone / "scripts" / "release", *args],
        cwd=clone,
        env={**os.environ, **identity},
        capture_output=True,
        text=True,
        check=False,
    )


def one_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 1, proc
    assert proc.stderr.count("Error: ") == 1, proc
    assert "Traceback" not in proc.stderr, proc
    assert fragment in proc.stderr, proc


def build(source: Path, out: Path, *kinds: str) -> list[Path]:
    subprocess.run(
        [sys.executable, "-m", "build", *kinds, "--no-isolation", "--outdir", out, source],
        check=True,
        capture_output=True,
    )
    return sorted(out.iterdir())


def wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    # The same entries, listed in the order the files were written.
    record = next(name for name in files if name.endswith(".dist-info/RECORD"))
    files[record] = b"\n".join(sorted(files[record].splitlines()))
    return files


@pytest.fixture(scope="module")
def released(clone: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Wheels built before and after ``scripts/release`` in the clone, and the release's
    sdist; the clone's HEAD is then the release commit."""
    out = tmp_path_factory.mktemp("dist")
    [before] = build(clone, out / "before", "--wheel")
    proc = run_release(clone)
    assert proc.returncode == 0, proc
    built = build(clone, out / "release", "--wheel", "--sdist")
    [wheel] = [path for path in built if path.suffix == ".whl"]
    [sdist] = [path for path in built if path.suffix == ".gz"]
    return {"before": before, "wheel": wheel, "sdist": sdist}


@pytest.mark.slow
def test_scripts_release_cuts_the_next_release(
    clone: Path, released: dict[str, Path], tmp_path: Path
) -> None:
    on_disk = _releases.parse((ROOT / "CHANGELOG.md").read_text("utf-8"))
    expected = _releases.next_version(_releases.releases(on_disk)[0].title)
    sections = _releases.parse((clone / "CHANGELOG.md").read_text("utf-8"))
    unreleased, release = sections[0], sections[1]
    assert (unreleased.title, unreleased.body) == ("Unreleased", "")
    assert release.title == expected
    assert release.date == datetime.now(UTC).date().isoformat()
    assert release.body == on_disk[0].body  # every unreleased entry, moved as it was
    assert git(clone, "log", "-1", "--format=%s").strip() == f"Release {expected}"
    head = git(clone, "rev-parse", "HEAD").strip()
    assert git(clone, "rev-parse", f"v{expected}^{{commit}}").strip() == head
    first = git(clone, "rev-parse", "v0.1.0^{commit}").strip()
    assert first.startswith(FIRST_RELEASE_COMMIT)  # tagged from the record

    assert version_of(clone) == expected
    # The same in a clone that did not get the tags, and the builds after it lead on.
    bare = tmp_path / "no-tags"
    git(tmp_path, "clone", "--quiet", "--no-tags", str(clone), str(bare))
    assert git(bare, "tag", "--list") == ""
    assert version_of(bare) == expected
    git(bare, "commit", "--quiet", "--allow-empty", "-m", "After the release")
    assert version_of(bare).startswith(f"{_releases.next_version(expected)}.dev1+g")

    # Refusals change nothing: nothing left to release, a version pip would not upgrade to.
    one_error(run_release(clone), "nothing to release")
    (clone / "CHANGELOG.md").write_text(
        (clone / "CHANGELOG.md")
        .read_text("utf-8")
        .replace("## [Unreleased]\n", "## [Unreleased]\n\n- One more entry.\n", 1),
        "utf-8",
    )
    git(clone, "commit", "--quiet", "-am", "One more entry")
    one_error(run_release(clone, "0.1.5"), "pip would not upgrade")
    one_error(run_release(clone, expected), f"{expected} is released already")
    git(clone, "reset", "--quiet", "--hard", head)
    assert git(clone, "status", "--porcelain") == ""


@pytest.mark.slow
def test_wheels_at_two_commits_increase(released: dict[str, Path]) -> None:
    versions = [Version(released[kind].name.split("-")[1]) for kind in ("before", "wheel")]
    assert versions[0].is_devrelease
    assert not versions[1].is_devrelease and not versions[1].local
    assert versions[0] < versions[1]


@pytest.mark.slow
def test_the_sdist_builds_the_same_wheel_and_both_pass_twine(
    released: dict[str, Path], tmp_path: Path
) -> None:
    sdist, wheel = released["sdist"], released["wheel"]
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    [unpacked] = tmp_path.iterdir()
    assert (unpacked / "CHANGELOG.md").is_file()
    assert (unpacked / "LICENSE").is_file()
    [from_sdist] = build(unpacked, tmp_path / "out", "--wheel")
    assert from_sdist.name == wheel.name
    built, rebuilt = wheel_files(wheel), wheel_files(from_sdist)
    assert sorted(built) == sorted(rebuilt)
    assert [name for name in built if built[name] != rebuilt[name]] == []
    dist_info = f"{wheel.name.split('-py3')[0]}.dist-info"
    for name in (
        "scaffold_cli/_template/history.bundle",
        f"{dist_info}/extra_metadata/CHANGELOG.md",
    ):
        assert name in built

    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", sdist, wheel],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    metadata = zipfile.Path(wheel, f"{dist_info}/METADATA")
    text = metadata.read_text()
    for field in ("License-Expression: MIT", "License-File: LICENSE", "Project-URL: Changelog"):
        assert field in text
    assert "Classifier: Programming Language :: Python :: 3.11" in text
    # The index shows what a user of the package can run, not the checkout's scripts.
    description = text.split("\n\n", 1)[1]
    assert "Content-Type: text/markdown" in text
    assert "$ pip install flask-stream-scaffold" in description
    assert "scripts/" not in description


def test_the_package_description_is_the_readme_a_package_user_can_follow() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    description = load_hook().package_description(readme, "https://docs.example/")
    assert "scripts/demo" in readme and "scripts/demo" not in description
    assert "## Development" in readme and "## Development" not in description
    assert "](docs/" not in description and "](https://docs.example/)" in description
    # Everything a user of the package reads in the README is kept.
    use = readme[readme.index("## Use") : readme.index("## Development")]
    assert use.replace("](docs/)", "](https://docs.example/)").strip() in description
