"""Releases: the record of what was released, from which commit, and how builds are named.

``CHANGELOG.md`` is the one record. Below ``## [Unreleased]`` each release is a heading
``## [X.Y.Z] - YYYY-MM-DD``, newest first. A release was made from the commit that added its
heading (``scripts/release`` makes that commit and tags it ``vX.Y.Z``); a release older than
the changelog names its commit in the heading instead: ``## [0.1.0] - 2026-11-23 (commit
a931090)``. A tag ``vX.Y.Z``, when the repository has it, is honoured over both, and tags
of versions the changelog does not list are releases too.

Every other build is named after the last release before it: ``<next>.devN+gHASH``, N commits
after it, where the next version raises the minor number (``0.1.0`` -> ``0.2.0.dev5+g1a2b3c4``).
The build hook names wheels so (``hatch_build.py`` loads this module by path, so it uses the
standard library only), and the CLI names the template versions projects record the same way.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

CHANGELOG = "CHANGELOG.md"
UNRELEASED = "Unreleased"
TAG_PREFIX = "v"
TAG_PATTERN = f"{TAG_PREFIX}[0-9]*"
"""Release tags, as ``git describe --match`` takes them."""

_HEADING = re.compile(
    r"^## \[(?P<title>[^\]]+)\]"
    r"(?: - (?P<date>\d{4}-\d{2}-\d{2}))?"
    r"(?: \(commit (?P<commit>[0-9a-f]{7,40})\))?[ \t]*$",
    re.MULTILINE,
)
_RELEASE = re.compile(r"^(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)$")
_DESCRIBE = re.compile(
    rf"^{TAG_PREFIX}(?P<version>\d+\.\d+\.\d+)-(?P<count>\d+)-g(?P<hash>[0-9a-f]+)$"
)


@dataclass(frozen=True)
class Section:
    """One section of the changelog: a release, or the changes not released yet."""

    title: str
    """``X.Y.Z`` for a release, ``Unreleased`` otherwise."""
    date: str | None
    commit: str | None
    """The commit a release older than the changelog was made from, as its heading names it."""
    body: str
    """The entries, as Markdown (``### Template``, ``- ...``), without the heading."""

    @property
    def released(self) -> bool:
        """Whether this section is a release (not the unreleased changes)."""
        return self.title != UNRELEASED

    @property
    def heading(self) -> str:
        """The section's title as people read it: ``0.2.0 - 2026-12-10``."""
        return f"{self.title} - {self.date}" if self.date else self.title

    @property
    def empty(self) -> bool:
        """Whether the section lists no entry."""
        return not any(line.lstrip().startswith(("-", "*")) for line in self.body.splitlines())


def parse(text: str) -> list[Section]:
    """The sections of a changelog, in the order written (the unreleased changes first).

    Raises ValueError for a release heading whose version is not ``X.Y.Z``.
    """
    headings = list(_HEADING.finditer(text))
    sections = []
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
        title = heading["title"]
        if title != UNRELEASED and not _RELEASE.match(title):
            raise ValueError(f"{CHANGELOG}: release {title!r} is not a version X.Y.Z")
        body = text[heading.end() : end]
        # Link definitions at the end belong to no section.
        body = re.split(r"(?m)^\[[^\]]+\]: ", body, maxsplit=1)[0]
        sections.append(Section(title, heading["date"], heading["commit"], body.strip("\n")))
    return sections


def releases(sections: Iterable[Section]) -> list[Section]:
    """The released sections, newest first."""
    return sorted((s for s in sections if s.released), key=lambda s: key(s.title), reverse=True)


def key(version: str) -> tuple[int, int, int]:
    """A release version ``X.Y.Z`` as a sortable tuple."""
    match = _RELEASE.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not a release version X.Y.Z")
    return int(match["major"]), int(match["minor"]), int(match["patch"])


def is_release(version: str) -> bool:
    """Whether ``version`` is a release version ``X.Y.Z``."""
    return _RELEASE.match(version) is not None


def next_version(last: str) -> str:
    """The version the builds after release ``last`` lead to: its minor number raised."""
    major, minor, _ = key(last)
    return f"{major}.{minor + 1}.0"


def build_name(last: str, distance: int, short: str) -> str:
    """The version of a build ``distance`` commits after release ``last`` (0: the release)."""
    if distance == 0:
        return last
    return f"{next_version(last)}.dev{distance}+g{short}"


def describe_name(described: str) -> str | None:
    """The build name of a ``git describe`` name ``vX.Y.Z-N-gHASH`` (what Copier records for
    an untagged commit), or None when it is not one."""
    match = _DESCRIBE.match(described)
    if match is None:
        return None
    return build_name(match["version"], int(match["count"]), match["hash"])


Git = Callable[..., str | None]
"""Runs ``git ARGS`` in a repository: its output, stripped, or None when git fails."""


def git_runner(root: Path) -> Git:
    """A `Git` for the repository at ``root``."""

    def run(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=False
            )
        except OSError:
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    return run


def release_commits(sections: Iterable[Section], git: Git) -> dict[str, str]:
    """Every release the repository knows, as ``{version: commit}``: each release of the
    changelog at its tag, the commit its heading names, or the commit that added its heading;
    and every other ``vX.Y.Z`` tag. Releases whose commit is not in the repository (a shallow
    clone, a copy without history) are left out."""
    found: dict[str, str] = {}
    for section in releases(sections):
        commit = _tagged(git, section.title)
        if commit is None and section.commit:
            commit = git("rev-parse", "--verify", "--quiet", f"{section.commit}^{{commit}}")
        if commit is None:
            # The newest change to the count of this heading is the commit that added it:
            # the file read is the one that has it.
            added = git("log", "-1", "--format=%H", "-S", f"## [{section.title}]", "--", CHANGELOG)
            commit = added or None
        if commit:
            found[section.title] = commit
    for tag in (git("tag", "--list", TAG_PATTERN) or "").split():
        version = tag.removeprefix(TAG_PREFIX)
        if is_release(version) and version not in found:
            commit = _tagged(git, version)
            if commit:
                found[version] = commit
    return found


def _tagged(git: Git, version: str) -> str | None:
    return git("rev-parse", "--verify", "--quiet", f"refs/tags/{TAG_PREFIX}{version}^{{commit}}")


def last_release(commits: dict[str, str], git: Git, head: str = "HEAD") -> tuple[str, int] | None:
    """The newest release at or before ``head``, and how many commits ``head`` is after it."""
    for version in sorted(commits, key=key, reverse=True):
        commit = commits[version]
        if git("merge-base", "--is-ancestor", commit, head) is not None:
            distance = git("rev-list", "--count", f"{commit}..{head}")
            return version, int(distance or 0)
    return None
