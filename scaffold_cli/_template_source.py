"""Where the template comes from, and which version of it a command should use.

Three kinds of installation are told apart:

- **wheel**: ``_template/history.bundle`` (a git bundle of the template's tags and the commit
  the wheel was built from) and ``_template/build.json`` ship inside the package. The bundle is
  fetched, additively, into a per-user git repository at `MANAGED_SRC`, and Copier is given
  that ``~/...`` string unexpanded: the answers file then records a location that is valid on
  any machine and across reinstalls, and Copier expands ``~`` itself.
- **source checkout** (editable install): ``copier.yml`` sits beside ``scaffold_cli/`` in a git
  repository; Copier renders its ``HEAD``.
- **plain copy** (a wheel built without git history): the template files alone. Projects copied
  from it record no ``_commit`` and cannot be updated, so this is only the last resort.

``--template SRC`` or the `TEMPLATE_ENV` environment variable override all three.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from . import _git
from ._errors import ScaffoldError

MANAGED_SRC = "~/.local/share/flask-stream-scaffold/template"
TEMPLATE_ENV = "STREAM_SCAFFOLD_TEMPLATE"

_PACKAGE_DIR = Path(__file__).resolve().parent
_PACKAGED = _PACKAGE_DIR / "_template"
_BUNDLE = _PACKAGED / "history.bundle"
_BUILD_INFO = _PACKAGED / "build.json"
_CHECKOUT = _PACKAGE_DIR.parent
# What a source checkout renders from: Copier's configuration, the template and its migrations.
_TEMPLATE_FILES = ("copier.yml", "template", "migrations")
# Refs under which each installed build's commit is kept in the managed repository, so that a
# commit stays reachable (and is never garbage-collected) even when it carries no tag.
_BUILD_REFS = "refs/flask-stream-scaffold/builds"


@dataclass(frozen=True)
class BuildInfo:
    """What the wheel was built from: its commit and (if tagged) tag."""

    commit: str
    tag: str | None

    @property
    def ref(self) -> str:
        """The ref to render for this build: its tag when it has one, else its commit."""
        return self.tag or self.commit


@dataclass(frozen=True)
class TemplateSource:
    """A template location as Copier takes it, and the ref to render from it."""

    src_path: str
    """Given to Copier, and recorded verbatim as ``_src_path``."""
    vcs_ref: str | None
    """The ref to render; ``None`` lets Copier take the latest PEP 440 tag."""
    kind: str
    """``wheel``, ``checkout``, ``plain``, ``env`` or ``option``: for messages and tests."""

    @property
    def updatable(self) -> bool:
        """Whether projects copied from here record a ``_commit`` Copier can update from."""
        return self.kind != "plain"


@cache
def build_info() -> BuildInfo | None:
    """The packaged build metadata, or None when not running from a wheel with history."""
    if not (_BUNDLE.is_file() and _BUILD_INFO.is_file()):
        return None
    data = json.loads(_BUILD_INFO.read_text(encoding="utf-8"))
    return BuildInfo(commit=data["commit"], tag=data.get("tag"))


def is_checkout() -> bool:
    """Whether the CLI runs from a source checkout of the template repository."""
    return (_CHECKOUT / "copier.yml").is_file() and (_CHECKOUT / ".git").exists()


def normalize(src: str) -> str:
    """Make a user-given template location safe to record.

    Relative local paths become absolute (a relative ``_src_path`` breaks updates run from
    another directory); ``~/...`` stays as written so that Copier expands it where it runs;
    URLs are kept as they are.
    """
    if src.startswith("~"):
        return src
    path = Path(src)
    if path.exists():
        return str(path.resolve())
    return src


def installed_source() -> TemplateSource:
    """The template that ships with this installation of the CLI, at its own version."""
    info = build_info()
    if info is not None:
        ensure_managed_repository(info)
        return TemplateSource(src_path=MANAGED_SRC, vcs_ref=info.ref, kind="wheel")
    if is_checkout():
        require_committed_checkout()
        return TemplateSource(src_path=str(_CHECKOUT), vcs_ref="HEAD", kind="checkout")
    if (_PACKAGED / "copier.yml").is_file():
        return TemplateSource(src_path=str(_PACKAGED), vcs_ref=None, kind="plain")
    raise ScaffoldError(
        "this installation carries no template; reinstall flask-stream-scaffold "
        f"or pass --template SRC (or set {TEMPLATE_ENV})"
    )


def source_for_new(template: str | None, vcs_ref: str | None) -> TemplateSource:
    """The template `new` copies from: ``--template``, then `TEMPLATE_ENV`, then the installed
    one. ``--vcs-ref`` overrides the version in every case."""
    if template:
        return TemplateSource(src_path=normalize(template), vcs_ref=vcs_ref, kind="option")
    from_env = os.environ.get(TEMPLATE_ENV)
    if from_env:
        return TemplateSource(src_path=normalize(from_env), vcs_ref=vcs_ref, kind="env")
    installed = installed_source()
    if vcs_ref:
        return TemplateSource(src_path=installed.src_path, vcs_ref=vcs_ref, kind=installed.kind)
    return installed


def is_installed(src_path: str) -> bool:
    """Whether ``src_path`` is the template this installation ships (or the one
    `TEMPLATE_ENV` puts in its place): the only template whose tasks and migrations run
    without ``--trust``.
    """
    if is_managed(src_path):
        return True
    location = normalize(src_path)
    if is_checkout() and location == str(_CHECKOUT):
        return True
    if (_PACKAGED / "copier.yml").is_file() and location == str(_PACKAGED):
        return True
    from_env = os.environ.get(TEMPLATE_ENV)
    return from_env is not None and location == normalize(from_env)


def require_committed_checkout() -> None:
    """Refuse to render a source checkout whose template files have uncommitted changes.

    Copier renders such a checkout through a throwaway commit and records that commit as
    ``_commit``; it exists nowhere else, so the project could never be updated again.
    """
    status = _git.git(["status", "--porcelain", "--", *_TEMPLATE_FILES], _CHECKOUT, check=False)
    changed = [line[3:] for line in status.stdout.splitlines()]
    if changed:
        shown = ", ".join(changed[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        )
        raise ScaffoldError(
            f"the template in {_CHECKOUT} has uncommitted changes ({shown}); commit them "
            "first, since a project rendered from them could never be updated"
        )


def is_managed(src_path: str) -> bool:
    """Whether a recorded ``_src_path`` is the per-user repository the wheel feeds."""
    if src_path == MANAGED_SRC:
        return True
    return Path(src_path).expanduser() == Path(MANAGED_SRC).expanduser()


def default_update_ref(src_path: str) -> str | None:
    """The ref `update` targets for a project recorded with ``src_path`` when no ``--to``.

    Projects from the managed repository go to the installed CLI's version; projects from a
    source checkout go to its ``HEAD``; any other source goes to its latest PEP 440 tag
    (``None``, Copier's own default).
    """
    if is_managed(src_path):
        info = build_info()
        if info is None:
            # A source checkout updating a project made by a wheel: render the checkout's
            # version, which the managed repository cannot have. Its latest tag is the best
            # available answer without the bundle.
            return None
        ensure_managed_repository(info)
        return info.ref
    if is_checkout() and normalize(src_path) == str(_CHECKOUT):
        require_committed_checkout()
        return "HEAD"
    return None


def managed_repository() -> Path:
    """The per-user repository holding every template version this user has installed."""
    return Path(MANAGED_SRC).expanduser()


def ensure_managed_repository(info: BuildInfo) -> Path:
    """Make sure the managed repository holds the packaged history, fetching it if needed.

    The fetch only adds: existing tags are never rewritten and refs of other builds stay, so
    installing an older CLI never loses a newer version a project may already be on. The
    worktree stays empty (nothing is ever checked out), so Copier never sees it as dirty.
    """
    repo = managed_repository()
    if not (repo / ".git").is_dir():
        repo.parent.mkdir(parents=True, exist_ok=True)
        # Initialise beside the target and move it into place, so a concurrent run never sees
        # a half-made repository.
        staging = Path(tempfile.mkdtemp(prefix=".template-", dir=repo.parent))
        _git.git(["init", "--quiet"], staging)
        try:
            staging.rename(repo)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not (repo / ".git").is_dir():
                raise ScaffoldError(
                    f"cannot create the template repository {MANAGED_SRC}; "
                    "check that the directory is writable"
                ) from None
    build_ref = f"{_BUILD_REFS}/{info.commit}"
    if _git.git(["rev-parse", "--verify", "--quiet", build_ref], repo, check=False).returncode:
        # No '+': a tag that already exists is kept as it is. The build ref goes last, so it
        # only exists once the whole bundle has been fetched.
        _git.git(
            ["fetch", "--quiet", "--no-tags", str(_BUNDLE), "refs/tags/*:refs/tags/*"],
            repo,
            check=False,
        )
        _git.git(["fetch", "--quiet", "--no-tags", str(_BUNDLE), f"HEAD:{build_ref}"], repo)
    return repo
