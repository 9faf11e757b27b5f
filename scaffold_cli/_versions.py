"""Template versions: what a recorded ``_commit`` means, how two versions compare, and
which release notes lie between them.

Copier records the version a project was rendered from as ``_commit``: a tag, a
``git describe`` name ``vX.Y.Z-N-gHASH`` for an untagged commit after a tag, or a bare
abbreviated commit hash when the template has no tag before it. Tags and describe names are
read as PEP 440 versions; a hash is a commit and is compared through the template's git
history, even when it reads as a version (``1a62900`` is not ``1.0a62900``). Every version is
shown as the wheels name their builds (`scaffold_cli._releases`): ``v0.1.0-5-gabc1234`` is
``0.2.0.dev5+gabc1234``, as ``stream-scaffold --version`` of that build says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from . import _git, _releases
from ._errors import ScaffoldError
from ._template_source import is_managed, managed_repository

if TYPE_CHECKING:
    from packaging.version import Version

_DESCRIBE = re.compile(r"^(?P<base>.+)-(?P<count>\d+)-g(?P<hash>[0-9a-f]+)\Z")
_HASH = re.compile(r"^[0-9a-f]{7,40}\Z")
"""What ``git describe --always`` prints for a commit with no tag before it."""


def is_commit_hash(commit: str) -> bool:
    """Whether a recorded ``_commit`` is an abbreviated commit hash rather than a version.

    This template's tags start with ``v``, so a value of hex digits alone never names one.
    """
    return _HASH.match(commit) is not None


def version_label(commit: str, repo: Path | None = None) -> str:
    """The name of a recorded ``_commit`` as people read it: ``v0.2.0`` is ``0.2.0``, a
    describe name is the build name (``0.3.0.dev3+gabc1234``), and a commit hash is named
    after the release before it in ``repo`` (the template's repository), or left as it is."""
    if is_commit_hash(commit):
        found = release_of(repo, commit) if repo is not None else None
        return commit if found is None else _releases.build_name(found[0], found[1], commit)
    parsed = parse_version(commit)
    return commit if parsed is None else str(parsed)


def parse_version(commit: str) -> Version | None:
    """The PEP 440 version a ``_commit`` value stands for, or None (a commit hash, a name
    that is no version).

    ``packaging`` is imported only when versions are compared.
    """
    from packaging.version import InvalidVersion, Version  # noqa: PLC0415

    if is_commit_hash(commit):
        return None
    candidate = _releases.describe_name(commit)
    match = _DESCRIBE.match(commit)
    if candidate is None and match:
        # A describe name after a tag that is not vX.Y.Z: Copier's own reading.
        candidate = f"{match['base']}.post{match['count']}+g{match['hash']}"
    try:
        return Version(candidate or commit)
    except InvalidVersion:
        return None


def local_repository(src_path: str) -> Path | None:
    """The template's git repository when it is on this machine (the per-user repository
    or a local path), else None."""
    repo = managed_repository() if is_managed(src_path) else Path(src_path).expanduser()
    return repo if repo.is_dir() and _git.is_work_tree(repo) else None


def release_of(repo: Path, commit: str) -> tuple[str, int] | None:
    """The last release at or before ``commit`` in ``repo``, and how many commits ``commit``
    is after it; None when there is none (or ``commit`` is not in ``repo``).

    The releases are the repository's ``vX.Y.Z`` tags and those its newest changelog records,
    so a checkout without tags knows them too.
    """
    git = _releases.git_runner(repo)
    if git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}") is None:
        return None
    sections = _changelog_at(repo, "HEAD") or []
    return _releases.last_release(_releases.release_commits(sections, git), git, commit)


def _changelog_at(repo: Path, ref: str) -> list[_releases.Section] | None:
    """The changelog of the template at ``ref``, or None when it has none (or a broken one)."""
    shown = _git.git(["show", f"{ref}:{_releases.CHANGELOG}"], repo, check=False)
    if shown.returncode:
        return None
    try:
        return _releases.parse(shown.stdout)
    except ValueError:
        return None


@dataclass(frozen=True)
class ReleaseNotes:
    """The changelog sections between a project's template version and another one."""

    since: str | None
    """The last release the project has (None: none, or not known)."""
    partial: bool
    """The project is on a commit after ``since``: some entries may be in it already."""
    sections: list[_releases.Section]
    """Newest first: the releases after ``since``, then (first of all) unreleased entries."""
    target: str
    """The version the notes lead to, as `version_label` names it."""

    @property
    def releases(self) -> list[_releases.Section]:
        """The releases among the sections."""
        return [section for section in self.sections if section.released]

    def title(self, section: _releases.Section) -> str:
        """A section's title as shown: ``0.2.0 - 2026-12-10``, or which build has the
        unreleased changes."""
        return section.heading if section.released else f"Unreleased, in {self.target}"


def release_notes(src_path: str, current: str, target: str) -> ReleaseNotes | None:
    """What the template's changelog at ``target`` lists after the project's version
    ``current``; None when the template is not local or has no changelog there."""
    repo = local_repository(src_path)
    sections = None if repo is None else _changelog_at(repo, target)
    if repo is None or sections is None:
        return None
    found = _project_release(repo, current)
    since, distance = found if found is not None else (None, 0)
    after = None if since is None else _releases.key(since)
    listed = [
        section
        for section in sections
        if (section.released and (after is None or _releases.key(section.title) > after))
        or (not section.released and not section.empty)
    ]
    return ReleaseNotes(
        since=since,
        partial=since is None or distance > 0,
        sections=listed,
        target=version_label(target, repo),
    )


def _project_release(repo: Path, current: str) -> tuple[str, int] | None:
    """The last release at or before a recorded ``_commit``, and the commits since it."""
    match = _DESCRIBE.match(current)
    tag = match["base"] if match else current
    version = tag.removeprefix(_releases.TAG_PREFIX)
    if tag.startswith(_releases.TAG_PREFIX) and _releases.is_release(version):
        return version, int(match["count"]) if match else 0
    return release_of(repo, current)


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
    its history decides then, as it does for commit hashes: the same commit, an ancestor
    (behind) or a descendant (ahead).
    """
    if target is None:
        return "unknown", f"the latest version of the template {src_path}"
    repo = local_repository(src_path)
    current_version, target_version = parse_version(current), parse_version(target)
    if (
        current_version is not None
        and target_version is not None
        and (
            current_version == target_version
            or not (repo is not None and (current_version.local or target_version.local))
        )
    ):
        return _compare_versions(current_version, target_version), ""
    if repo is not None:
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
    repo = local_repository(src_path)
    if repo is not None:
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
