"""Template versions: what a recorded ``_commit`` means, and how two versions compare.

Copier records the version a project was rendered from as ``_commit`` (a tag, or a
``git describe`` name for an untagged commit) and reads it as a PEP 440 version; the same
reading is done here, and when it fails (untagged commits) the template's git history decides.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from . import _git
from ._errors import ScaffoldError
from ._template_source import is_managed, managed_repository

if TYPE_CHECKING:
    from packaging.version import Version

_DESCRIBE = re.compile(r"^(?P<base>.+)-(?P<count>\d+)-g(?P<hash>[0-9a-f]+)\Z")


def version_label(commit: str) -> str:
    """A readable version for a recorded ``_commit``: ``v0.2.0`` stays, a describe string
    ``v0.2.0-3-gabc123`` reads as ``0.2.0.post3+gabc123`` (Copier's own interpretation)."""
    parsed = parse_version(commit)
    return commit if parsed is None else str(parsed)


def parse_version(commit: str) -> Version | None:
    """The PEP 440 version Copier derives from a ``_commit`` value, or None.

    ``packaging`` is imported only when versions are compared.
    """
    from packaging.version import InvalidVersion, Version  # noqa: PLC0415

    match = _DESCRIBE.match(commit)
    candidate = commit
    if match:
        candidate = f"{match['base']}.post{match['count']}+g{match['hash']}"
    try:
        return Version(candidate)
    except InvalidVersion:
        return None


Relation = Literal["same", "behind", "ahead", "unknown"]
"""How a project's template version compares with another version of the template."""


def relation(src_path: str, current: str, target: str | None) -> Relation:
    """Where the project's ``current`` template version stands against ``target``."""
    return explain_relation(src_path, current, target)[0]


def explain_relation(src_path: str, current: str, target: str | None) -> tuple[Relation, str]:
    """Where the project's ``current`` template version stands against ``target``, and (when
    ``unknown``) what could not be determined, as a phrase.

    PEP 440 versions (tags and ``git describe`` names) are compared as versions, except that a
    ``git describe`` name may lie on a side branch: when the template is a local repository,
    its history decides then, as it does for untagged commits: the same commit, an ancestor
    (behind) or a descendant (ahead).
    """
    if target is None:
        return "unknown", f"the latest version of the template {src_path}"
    repo = managed_repository() if is_managed(src_path) else Path(src_path).expanduser()
    local = repo.is_dir() and _git.is_work_tree(repo)
    current_version, target_version = parse_version(current), parse_version(target)
    if (
        current_version is not None
        and target_version is not None
        and (
            current_version == target_version
            or not (local and (current_version.local or target_version.local))
        )
    ):
        return _compare_versions(current_version, target_version), ""
    if local:
        return history_relation(repo, current, target)
    if current == target:
        return "same", ""
    return "unknown", f"how {current} relates to {target} (the template is not local)"


def _compare_versions(current: Version, target: Version) -> Relation:
    if current == target:
        return "same"
    return "behind" if current < target else "ahead"


def source_problem(src_path: str, answers_file: str) -> str:
    """What cannot be determined because the recorded ``_src_path`` cannot be read on this
    machine (a relative path, a folder that moved), as a phrase; ``""`` when it can."""
    if "://" in src_path or src_path.startswith(("git@", "gh:", "gl:")) or is_managed(src_path):
        return ""
    path = Path(src_path).expanduser()
    if not path.is_absolute():
        return (
            f"where the template is: {answers_file} records the relative _src_path "
            f"{src_path!r}; write the template's absolute path there"
        )
    if not path.exists():
        return (
            f"the available version: the template {src_path} is not there (moved or "
            f"deleted?); write its new location as _src_path in {answers_file}"
        )
    return ""


def describe(src_path: str, ref: str | None) -> str | None:
    """The ``git describe`` name of ``ref`` in the template at ``src_path`` (its latest
    PEP 440 tag when ``ref`` is None), or None when that cannot be told without Copier."""
    repo = managed_repository() if is_managed(src_path) else Path(src_path).expanduser()
    if repo.is_dir() and _git.is_work_tree(repo):
        if ref is None:
            # Copier's own choice: the latest PEP 440 tag, or HEAD when there is none.
            ref = latest_tag(repo) or "HEAD"
        described = _git.git(["describe", "--tags", "--always", ref], repo, check=False)
        if described.returncode:
            raise ScaffoldError(f"unknown template version {ref!r} in {src_path}")
        return described.stdout.strip()
    if ref is None:
        listing = _git.git(["ls-remote", "--tags", "--refs", src_path], Path.cwd(), check=False)
        tags = [line.split("refs/tags/", 1)[-1] for line in listing.stdout.splitlines()]
        return pick_latest(tags)
    return ref if parse_version(ref) is not None else None


def history_relation(repo: Path, current: str, target: str) -> tuple[Relation, str]:
    """Compare two template versions by their commits in ``repo``: the same commit, an
    ancestor of the target (behind) or a descendant (ahead); else unknown, and why."""

    def commit_of(name: str) -> str | None:
        result = _git.git(
            ["rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"], repo, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else None

    current_commit, target_commit = commit_of(current), commit_of(target)
    if current_commit is None:
        return "unknown", f"the project's template version {current!r}: not in the template"
    if target_commit is None:
        return "unknown", f"the template version {target!r}: not in the template"
    if current_commit == target_commit:
        return "same", ""

    def is_ancestor(ancestor: str, descendant: str) -> bool:
        check = ["merge-base", "--is-ancestor", ancestor, descendant]
        return _git.git(check, repo, check=False).returncode == 0

    if is_ancestor(current_commit, target_commit):
        return "behind", ""
    if is_ancestor(target_commit, current_commit):
        return "ahead", ""
    return "unknown", (
        f"how {current} relates to {target}: neither descends from the other (a side branch "
        "of the template?)"
    )


def pick_latest(names: list[str]) -> str | None:
    """The highest PEP 440 version among tag names, prereleases excluded, as Copier does."""
    versions = [(parse_version(name), name) for name in names]
    stable = [(v, name) for v, name in versions if v is not None and not v.is_prerelease]
    return max(stable)[1] if stable else None


def latest_tag(repo: Path) -> str | None:
    """The latest stable PEP 440 tag of the repository at ``repo``, as Copier picks it."""
    return pick_latest(_git.git(["tag", "--list"], repo).stdout.split())
