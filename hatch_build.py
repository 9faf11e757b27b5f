"""Build hook: ship the template's version history inside the wheel.

An installed ``stream-scaffold`` must be able to update projects without a checkout and without
network access, so the wheel carries ``scaffold_cli/_template/history.bundle`` (a git bundle of
every tag plus the commit being built) and ``scaffold_cli/_template/build.json`` naming that
commit, its tag (when the commit is tagged ``v<version>``) and the version. At run time the CLI
fetches the bundle into a per-user repository; see docs/updates.md.

Building from an sdist (no ``.git``) produces a wheel without history: it can create projects,
but those projects cannot be updated. The hook says so.

The version comes from git too (`GitVersionHook`), so that every build is distinct and
``pip install -U`` of a newer build upgrades: ``X`` on a commit tagged ``vX``; ``X.postN+gHASH``
N commits after it (Copier reads a ``git describe`` name the same way); ``FALLBACK.devN+gHASH``
before the first tag; ``.dYYYYMMDDHHMMSS`` is added to the local part when tracked files have
uncommitted changes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

_DESTINATION = "scaffold_cli/_template"
# What the template is made of; a build with uncommitted changes here ships files that differ
# from the commit projects record, so it is worth a warning.
_TEMPLATE_PATHS = ("copier.yml", "template", "migrations")


_DESCRIBE = re.compile(r"^v(?P<base>.+)-(?P<count>\d+)-g(?P<hash>[0-9a-f]+)(?P<dirty>-dirty)?$")


def _run_git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def version_from_git(root: Path, fallback: str) -> str | None:
    """The version of the commit checked out in ``root`` (see the module docstring), or None
    when ``root`` is not the top of a git repository."""
    try:
        if Path(_run_git(root, "rev-parse", "--show-toplevel")).resolve() != root.resolve():
            return None
        described = _run_git(
            root, "describe", "--tags", "--long", "--dirty", "--abbrev=7", "--match", "v[0-9]*"
        )
    except (OSError, subprocess.CalledProcessError):
        try:
            commits = _run_git(root, "rev-list", "--count", "HEAD")
            short = _run_git(root, "rev-parse", "--short=7", "HEAD")
            changed = bool(_run_git(root, "status", "--porcelain", "--untracked-files=no"))
        except (OSError, subprocess.CalledProcessError):
            return None
        return f"{fallback}.dev{commits}+g{short}{_dirty_suffix(changed)}"
    match = _DESCRIBE.match(described)
    if match is None:
        return None
    base, count, dirty = match["base"], int(match["count"]), bool(match["dirty"])
    if count == 0 and not dirty:
        return base
    post = f".post{count}" if count else ""
    return f"{base}{post}+g{match['hash']}{_dirty_suffix(dirty)}"


def _dirty_suffix(dirty: bool) -> str:
    return f".d{datetime.now(UTC):%Y%m%d%H%M%S}" if dirty else ""


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
    """Add the git bundle and its metadata to the wheel."""

    PLUGIN_NAME = "custom"

    def _git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.root, capture_output=True, text=True, check=True
        ).stdout.strip()

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Create the bundle in a scratch directory and force-include it."""
        if self.target_name != "wheel":
            return
        try:
            top = Path(self._git("rev-parse", "--show-toplevel")).resolve()
        except (OSError, subprocess.CalledProcessError):
            top = None
        if top != Path(self.root).resolve():
            self.app.display_warning(
                "flask-stream-scaffold: no git repository at the build root; the wheel carries "
                "no template history, so projects it creates cannot be updated"
            )
            return
        if self._git("status", "--porcelain", "--", *_TEMPLATE_PATHS):
            self.app.display_warning(
                "flask-stream-scaffold: uncommitted template changes are not part of the "
                "shipped history; projects render from the last commit"
            )
        self._scratch = Path(tempfile.mkdtemp(prefix="stream-scaffold-build-"))
        commit = self._git("rev-parse", "HEAD")
        project_version = self.metadata.version
        wanted = f"v{project_version}"
        tags = self._git("tag", "--points-at", "HEAD").split()
        tag = wanted if wanted in tags else None
        if tag is None:
            self.app.display_warning(
                f"flask-stream-scaffold: HEAD is not tagged {wanted} (an untagged build); "
                "projects record the commit's 'git describe' name as their template version"
            )
        bundle = self._scratch / "history.bundle"
        refs = ["HEAD", "--tags"] if self._git("tag", "--list") else ["HEAD"]
        self._git("bundle", "create", "--quiet", str(bundle), *refs)
        info = self._scratch / "build.json"
        info.write_text(
            json.dumps({"version": project_version, "commit": commit, "tag": tag}, indent=2) + "\n",
            encoding="utf-8",
        )
        force_include = build_data.setdefault("force_include", {})
        force_include[str(bundle)] = f"{_DESTINATION}/history.bundle"
        force_include[str(info)] = f"{_DESTINATION}/build.json"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """Remove the scratch directory."""
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
