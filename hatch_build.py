"""Build hooks: the version of every build, and the template's history inside the wheel.

An installed ``stream-scaffold`` must be able to update projects without a checkout and without
network access, so the wheel carries ``scaffold_cli/_template/history.bundle`` (a git bundle of
every release, as a ``vX.Y.Z`` tag, plus the commit being built) and
``scaffold_cli/_template/build.json`` naming that commit, its tag (when it is a release) and
the version. At run time the CLI fetches the bundle into a per-user repository; see
docs/updates.md. The release tags come from the record of releases in ``CHANGELOG.md``, so a
clone without tags builds the same bundle as one with them.

The sdist carries the same two files, so a wheel built from it is the same wheel.

The version comes from git and that record too (`GitVersionHook`, rules in
``scaffold_cli/_releases.py``), so that versions only increase along the history and
``pip install -U`` of a newer build upgrades: ``X.Y.Z`` on a release's commit;
``<next>.devN+gHASH`` N commits after the last release, where the next version raises its
minor number; ``.dYYYYMMDDHHMMSS`` is added to the local part when tracked files have
uncommitted changes.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

if TYPE_CHECKING:
    from scaffold_cli import _releases
else:

    def _load_releases() -> object:
        """The release rules of the source tree being built (the CLI names template versions
        by them too); loaded by path, since that tree is not what is installed."""
        name = "_flask_stream_scaffold_releases"
        path = Path(__file__).resolve().parent / "scaffold_cli" / "_releases.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it runs
        spec.loader.exec_module(module)
        return module

    _releases = _load_releases()

_DESTINATION = "scaffold_cli/_template"
_BUNDLE = f"{_DESTINATION}/history.bundle"
_BUILD_INFO = f"{_DESTINATION}/build.json"
# What the template is made of; a build with uncommitted changes here ships files that differ
# from the commit projects record, so it is worth a warning.
_TEMPLATE_PATHS = ("copier.yml", "template", "migrations")


def _is_top(root: Path, git: _releases.Git) -> bool:
    top = git("rev-parse", "--show-toplevel")
    return top is not None and Path(top).resolve() == root.resolve()


def _changelog(root: Path) -> list[_releases.Section]:
    path = root / _releases.CHANGELOG
    return _releases.parse(path.read_text("utf-8")) if path.is_file() else []


def version_from_git(root: Path, fallback: str) -> str | None:
    """The version of the commit checked out in ``root`` (see the module docstring), or None
    when ``root`` is not the top of a git repository.

    Without any release in the history the builds lead to ``fallback``; without the last
    recorded release's commit (a shallow clone) they lead to the release after it, N counting
    every commit there is.
    """
    git = _releases.git_runner(root)
    if not _is_top(root, git):
        return None
    short = git("rev-parse", "--short=7", "HEAD")
    if short is None:
        return None
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    sections = _changelog(root)
    last = _releases.last_release(_releases.release_commits(sections, git), git)
    if last is None:
        recorded = _releases.releases(sections)
        count = int(git("rev-list", "--count", "HEAD") or 0)
        if recorded:
            name = _releases.build_name(recorded[0].title, count, short)
        else:
            name = f"{fallback}.dev{count}+g{short}"
    else:
        name = _releases.build_name(last[0], last[1], short)
    if dirty:
        name += f"{'.' if '+' in name else '+g' + short + '.'}d{datetime.now(UTC):%Y%m%d%H%M%S}"
    return name


class GitVersionHook(MetadataHookInterface):
    """Set ``project.version`` from git (``dynamic = ["version"]``); outside a repository
    (an sdist) keep the version its PKG-INFO records."""

    PLUGIN_NAME = "custom"

    def update(self, metadata: dict[str, Any]) -> None:
        """Fill in the version."""
        root = Path(self.root)
        fallback = str(self.config.get("fallback-version", "0.0.0"))
        version = version_from_git(root, fallback)
        if version is None:
            info = root / "PKG-INFO"
            recorded = re.search(
                r"(?m)^Version: (.+)$", info.read_text("utf-8") if info.is_file() else ""
            )
            version = recorded[1].strip() if recorded else fallback
        metadata["version"] = version


class TemplateHistoryHook(BuildHookInterface):  # type: ignore[type-arg]
    """Add the git bundle and its metadata to the wheel and the sdist."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Create the bundle in a scratch directory and force-include it."""
        root = Path(self.root)
        git = _releases.git_runner(root)
        if not _is_top(root, git):
            if self.target_name == "wheel" and not (root / _BUNDLE).is_file():
                self.app.display_warning(
                    "flask-stream-scaffold: no git repository at the build root; the wheel "
                    "carries no template history, so projects it creates cannot be updated"
                )
            # An sdist's own bundle is part of the package: the wheel gets it as it is.
            return
        if git("status", "--porcelain", "--", *_TEMPLATE_PATHS):
            self.app.display_warning(
                "flask-stream-scaffold: uncommitted template changes are not part of the "
                "shipped history; projects render from the last commit"
            )
        self._scratch = Path(tempfile.mkdtemp(prefix="stream-scaffold-build-"))
        commit = git("rev-parse", "HEAD") or ""
        sections = _changelog(root)
        releases = _releases.release_commits(sections, git)
        missing = [s.title for s in _releases.releases(sections) if s.title not in releases]
        if missing:
            self.app.display_warning(
                f"flask-stream-scaffold: the commit of release {', '.join(missing)} is not in "
                "this repository (a shallow clone?); its version cannot be ordered after it: "
                "build from a full clone"
            )
        project_version = self.metadata.version
        tag = None
        if releases.get(project_version) == commit:
            tag = f"{_releases.TAG_PREFIX}{project_version}"
        bundle = self._scratch / "history.bundle"
        self._bundle(root, commit, releases, bundle)
        info = self._scratch / "build.json"
        info.write_text(
            json.dumps({"version": project_version, "commit": commit, "tag": tag}, indent=2) + "\n",
            encoding="utf-8",
        )
        force_include = build_data.setdefault("force_include", {})
        force_include[str(bundle)] = _BUNDLE
        force_include[str(info)] = _BUILD_INFO

    def _bundle(self, root: Path, commit: str, releases: dict[str, str], bundle: Path) -> None:
        """Write a bundle of ``commit`` (as ``HEAD``) and a ``vX.Y.Z`` tag per release.

        The refs are made in a scratch repository that borrows the objects of the one being
        built, so the build changes nothing there: its tags may be missing or differ.
        """
        git = _releases.git_runner(root)
        objects = git("rev-parse", "--path-format=absolute", "--git-path", "objects")
        scratch = self._scratch / "refs.git"
        run = _releases.git_runner(self._scratch)
        if objects is None or run("init", "--quiet", "--bare", str(scratch)) is None:
            raise RuntimeError("flask-stream-scaffold: cannot prepare the template history")
        (scratch / "objects" / "info" / "alternates").write_text(objects + "\n", "utf-8")
        # A shallow clone (pre-commit, CI checkouts) lacks the parents of its oldest commits:
        # the scratch repository must know where history stops, or the bundle walks past it.
        shallow = git("rev-parse", "--path-format=absolute", "--git-path", "shallow")
        if shallow is not None and Path(shallow).is_file():
            shutil.copyfile(shallow, scratch / "shallow")
        refs = _releases.git_runner(scratch)
        for version, tagged in releases.items():
            refs("update-ref", f"refs/tags/{_releases.TAG_PREFIX}{version}", tagged)
        refs("update-ref", "--no-deref", "HEAD", commit)
        # One packing thread: the same history then packs to the same bytes, so a wheel built
        # from the sdist is identical to one built from the checkout.
        if (
            refs(
                "-c", "pack.threads=1", "bundle", "create", "--quiet", str(bundle), "HEAD", "--tags"
            )
            is None
        ):
            raise RuntimeError("flask-stream-scaffold: git bundle create failed")

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """Remove the scratch directory."""
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
