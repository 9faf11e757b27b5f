"""The few git operations the scaffolder needs, run as ``git`` subprocesses.

Nothing here changes the user's git configuration: when no identity is configured, commits get
one through ``-c user.name=... -c user.email=...`` on that single command.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._errors import ScaffoldError

FALLBACK_NAME = "flask-stream-scaffold"
FALLBACK_EMAIL = "flask-stream-scaffold@localhost"


def git(
    args: Sequence[str],
    cwd: Path,
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``git ARGS`` in ``cwd`` and capture its output.

    A failing command raises `ScaffoldError` carrying git's last line of stderr, unless
    ``check`` is false.
    """
    full_env = {**os.environ, **(env or {})}
    # Never stop to ask for credentials or an editor: the scaffolder is not interactive here.
    full_env.setdefault("GIT_TERMINAL_PROMPT", "0")
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as error:
        raise GitError(
            "git", "git is not installed or not on PATH; install git and retry"
        ) from error
    if check and result.returncode != 0:
        lines = (result.stderr.strip() or result.stdout.strip() or "failed").splitlines()
        command = next((arg for arg in args if not arg.startswith("-") and "=" not in arg), "")
        raise GitError(command, f"git {command} failed: {lines[-1]}")
    return result


class GitError(ScaffoldError):
    """A git command failed; ``command`` names it (``commit``, ``init``...)."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(message)
        self.command = command


def is_work_tree(path: Path) -> bool:
    """Tell whether ``path`` is inside a git working tree."""
    if not path.is_dir():
        return False
    result = git(["rev-parse", "--is-inside-work-tree"], path, check=False)
    return result.returncode == 0 and result.stdout.strip() == "true"


def ignores(repository: Path, path: Path) -> bool:
    """Tell whether ``repository``'s ignore rules cover the folder ``path`` (existing or not).

    The trailing slash asks about a directory, so ``/build/``-style rules match a folder that
    does not exist yet.
    """
    result = git(["check-ignore", "--quiet", f"{path.absolute()}/"], repository, check=False)
    return result.returncode == 0


def toplevel(path: Path) -> Path:
    """The root of the working tree containing ``path``."""
    return Path(git(["rev-parse", "--show-toplevel"], path).stdout.strip())


def changed_files(path: Path) -> list[str]:
    """Files under ``path`` that differ from ``HEAD``: modified, staged, untracked or unmerged.

    Ignored files are not listed: they are not part of what Copier compares.
    """
    output = git(
        ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--", "."], path
    ).stdout
    return _porcelain_paths(output)


def restore_head(path: Path) -> None:
    """Put ``path`` back as ``HEAD`` has it: staged and unstaged changes undone, untracked
    files removed (ignored ones are left alone). Only for a tree that was clean before."""
    git(["reset", "--quiet", "--", "."], path)
    git(["checkout", "--quiet", "HEAD", "--", "."], path)
    git(["clean", "-d", "--force", "--quiet", "--", "."], path)


def _porcelain_paths(output: str) -> list[str]:
    """Paths from ``git status --porcelain -z`` output (the new name of a rename)."""
    paths: list[str] = []
    entries = iter(output.split("\0"))
    for entry in entries:
        if not entry:
            continue
        status, name = entry[:2], entry[3:]
        paths.append(name)
        if "R" in status or "C" in status:
            # -z puts a rename's old name in the next entry.
            next(entries, None)
    return paths


def status_lines(path: Path) -> list[tuple[str, str]]:
    """``(status, path)`` pairs of ``git status --porcelain`` under ``path``."""
    output = git(
        ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--", "."], path
    ).stdout
    pairs: list[tuple[str, str]] = []
    entries = iter(output.split("\0"))
    for entry in entries:
        if not entry:
            continue
        status, name = entry[:2], entry[3:]
        pairs.append((status, name))
        if "R" in status or "C" in status:
            next(entries, None)
    return pairs


def unmerged_files(path: Path) -> list[str]:
    """Files git records as unmerged (conflicts left by a 3-way merge)."""
    output = git(["diff", "--name-only", "--diff-filter=U", "-z"], path).stdout
    return sorted({name for name in output.split("\0") if name})


def _identity_options(cwd: Path) -> list[str]:
    """``-c`` options supplying an identity when none is configured, else nothing."""
    options: list[str] = []
    for key, variables, fallback in (
        ("user.name", ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"), FALLBACK_NAME),
        ("user.email", ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"), FALLBACK_EMAIL),
    ):
        configured = git(["config", "--get", key], cwd, check=False).stdout.strip()
        from_env = all(os.environ.get(name) for name in variables) or (
            key == "user.email" and os.environ.get("EMAIL")
        )
        if not configured and not from_env:
            options += ["-c", f"{key}={fallback}"]
    return options


def commit_paths(path: Path, message: str, *, verify: bool = True) -> tuple[str, bool]:
    """Stage everything under ``path`` and commit only that: changes the user staged
    elsewhere in the repository stay staged and out of the commit. ``verify=False`` skips
    the hooks (for a commit the scaffolder drops again).

    Returns the new commit's hash, and whether the fallback identity was used (no
    ``user.name`` / ``user.email`` configured).
    """
    git(["add", "--all", "--", "."], path)
    identity = _identity_options(path)
    hooks = [] if verify else ["--no-verify"]
    git([*identity, "commit", "--quiet", *hooks, "-m", message, "--", "."], path)
    return git(["rev-parse", "HEAD"], path).stdout.strip(), bool(identity)


def head(path: Path) -> str | None:
    """The commit ``HEAD`` names, or None in a repository without commits."""
    result = git(["rev-parse", "--verify", "--quiet", "HEAD"], path, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def staged_elsewhere(path: Path) -> list[str]:
    """Files staged in the repository holding ``path`` but outside ``path`` (top-relative)."""
    top = toplevel(path)
    prefix = path.resolve().relative_to(top.resolve()).as_posix()
    output = git(["diff", "--cached", "--name-only", "-z"], top).stdout
    names = [name for name in output.split("\0") if name]
    if prefix == ".":
        return []
    return [name for name in names if not name.startswith(f"{prefix}/")]


def conflict_marker_files(path: Path) -> list[str]:
    """Tracked text files under ``path`` holding merge conflict markers."""
    result = git(
        ["grep", "-l", "-I", "-E", "-e", "^(<{7}|>{7})( |$)", "--", "."], path, check=False
    )
    return sorted(line for line in result.stdout.splitlines() if line)


def stage_blob(path: Path, stage: int, name: str) -> bytes | None:
    """The content of ``name`` (top-relative) at merge ``stage`` of the index, or None."""
    result = subprocess.run(
        ["git", "cat-file", "blob", f":{stage}:{name}"],
        cwd=path,
        capture_output=True,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None


def init(path: Path) -> None:
    """Create a repository in ``path``, on ``main`` unless the user configured a default."""
    configured = git(["config", "--get", "init.defaultBranch"], path, check=False).stdout.strip()
    branch = [] if configured else ["--initial-branch=main"]
    git(["init", "--quiet", *branch], path)
