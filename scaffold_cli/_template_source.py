"""Where the template comes from, and which version of it a command should use.

Three kinds of installation are told apart:

- **wheel**: ``_template/history.bundle`` (a git bundle of the commit the wheel was built
  from, with a ``vX.Y.Z`` tag per release) and ``_template/build.json`` ship inside the
  package. The bundle is
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
from ._answers import OUR_QUESTIONS
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
        return TemplateSource(src_path=str(_CHECKOUT), vcs_ref=checkout_ref(), kind="checkout")
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
        check_is_this_template(template)
        return TemplateSource(src_path=normalize(template), vcs_ref=vcs_ref, kind="option")
    from_env = os.environ.get(TEMPLATE_ENV)
    if from_env:
        check_is_this_template(from_env)
        return TemplateSource(src_path=normalize(from_env), vcs_ref=vcs_ref, kind="env")
    if shutil.which("git") is None and (_PACKAGED / "copier.yml").is_file() and not vcs_ref:
        # Without git there is no history to render from: the plain template still works.
        return TemplateSource(src_path=str(_PACKAGED), vcs_ref=None, kind="plain")
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


def checkout_ref() -> str:
    """The commit of the source checkout to render: its ``HEAD``, named by its hash.

    Never the name ``HEAD`` itself: for that, Copier folds *every* uncommitted change in the
    checkout (a README edit, an untracked note) into a throwaway commit and records it as
    ``_commit``, which no later update can find. Uncommitted template files are refused.
    """
    require_committed_checkout()
    return _git.head(_CHECKOUT) or "HEAD"


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
        return checkout_ref()
    return None


def managed_repository() -> Path:
    """The per-user repository holding every template version this user has installed."""
    return Path(MANAGED_SRC).expanduser()


def ensure_managed_repository(info: BuildInfo) -> Path:
    """Make sure the managed repository holds the packaged history, fetching it if needed.

    The fetch only adds: existing tags are never rewritten and refs of other builds stay, so
    installing an older CLI never loses a newer version a project may already be on. Its
    ``main`` branch (checked out, so that plain ``copier update`` finds a ``HEAD`` and a clean
    tree) only ever moves forward, to a build that descends from it.

    An unwritable home directory is a `ScaffoldError`, not a traceback.
    """
    repo = managed_repository()
    try:
        if not (repo / ".git").is_dir():
            _create_repository(repo)
        build_ref = f"{_BUILD_REFS}/{info.commit}"
        if _git.git(["rev-parse", "--verify", "--quiet", build_ref], repo, check=False).returncode:
            # No '+': a tag that already exists is kept as it is. The build ref goes last, so
            # it only exists once the whole bundle has been fetched.
            _git.git(
                ["fetch", "--quiet", "--no-tags", str(_BUNDLE), "refs/tags/*:refs/tags/*"],
                repo,
                check=False,
            )
            _git.git(["fetch", "--quiet", "--no-tags", str(_BUNDLE), f"HEAD:{build_ref}"], repo)
        _advance_main(repo, info.commit)
    except OSError as error:
        raise ScaffoldError(
            f"cannot write the template repository {MANAGED_SRC} ({error.strerror or error}); "
            "make your home directory writable"
        ) from None
    return repo


def _create_repository(repo: Path) -> None:
    """``git init`` the managed repository, atomically: initialise beside the target and move
    it into place, so a concurrent run never sees a half-made repository."""
    repo.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".template-", dir=repo.parent))
    _git.git(["init", "--quiet", "--initial-branch=main"], staging)
    try:
        staging.rename(repo)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (repo / ".git").is_dir():
            raise


def _advance_main(repo: Path, commit: str) -> None:
    """Check ``commit`` out on ``main`` unless ``main`` already holds it or a later build."""
    current = _git.head(repo)
    if current == commit:
        return
    if current is not None:
        ancestor = ["merge-base", "--is-ancestor", current, commit]
        if _git.git(ancestor, repo, check=False).returncode:
            return
    _git.git(["checkout", "--quiet", "--force", "-B", "main", commit], repo)


def prepare_for_project(src_path: str) -> None:
    """Make the template a project records available before Copier re-renders from it.

    For projects of the per-user repository this creates (or completes) that repository from
    the installed wheel: a project cloned onto another machine, or another home directory,
    works with the first command run there.
    """
    if not is_managed(src_path):
        return
    info = build_info()
    if info is not None:
        ensure_managed_repository(info)
        return
    if not (managed_repository() / ".git").is_dir():
        raise ScaffoldError(
            f"the project's template {MANAGED_SRC} is not on this machine; install "
            "flask-stream-scaffold from a wheel and run this command again"
        )


def questions_of(template: Path) -> set[str] | None:
    """The questions (and computed values) a local template folder's ``copier.yml`` defines,
    or None when it has no readable one."""
    import yaml  # noqa: PLC0415  (keeps `--help` from paying for it)

    for name in ("copier.yml", "copier.yaml"):
        config = template / name
        if config.is_file():
            try:
                loaded = yaml.safe_load(config.read_text(encoding="utf-8"))
            except yaml.YAMLError:
                return None
            if not isinstance(loaded, dict):
                return None
            return {str(key) for key in loaded if not str(key).startswith("_")}
    return None


def source_questions(source: TemplateSource) -> set[str] | None:
    """The questions of the template `new` renders, when they can be read without Copier."""
    if source.kind in {"wheel", "plain"}:
        return questions_of(_PACKAGED)
    if source.kind == "checkout":
        return questions_of(_CHECKOUT)
    return questions_of(Path(source.src_path).expanduser())


def check_is_this_template(src: str) -> None:
    """Refuse a local template folder that is not this template (or a Copier template
    asking the same questions): a generated project, say, would be copied verbatim."""
    path = Path(src).expanduser()
    if not path.is_dir():
        return
    questions = questions_of(path)
    missing = sorted(OUR_QUESTIONS - (questions or set()))
    if missing:
        what = "no copier.yml" if questions is None else f"no question {', '.join(missing)}"
        raise ScaffoldError(
            f"{src} is not a flask-stream-scaffold template ({what}); pass the template "
            "repository, or leave out --template to use the installed one"
        )
