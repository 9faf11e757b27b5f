"""The operations behind each command, carried by one `Worker` object.

Like Copier's own ``Worker``, a `Worker` holds the options of one operation and exposes one
``run_*`` method per operation; the command line only builds it and reports the result it
returns. Every method either completes, or raises `ScaffoldError` having changed nothing (the
one exception is a merge conflict, which is left in the tree on purpose, for the user to
resolve, and reported with the way back).
"""

from __future__ import annotations

import difflib
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import _copier, _data, _git, _names, _versions
from ._answers import ANSWERS_FILE, Answers, Endpoint, load_answers
from ._errors import ScaffoldError
from ._template_source import (
    TemplateSource,
    default_update_ref,
    is_installed,
    prepare_for_project,
    source_for_new,
    source_questions,
)
from ._versions import ReleaseNotes

Conflict = _names.ConflictMode


def _ignore(message: str) -> None:
    """Default warning sink: drop the message."""


@dataclass(frozen=True)
class ProjectSpec:
    """The answers for a new project (already validated by `Worker.run_new`)."""

    project_name: str
    package_name: str | None
    """None: the template derives it from the project name."""
    description: str
    server: str
    proxy: str
    endpoints: list[Endpoint]
    extra: dict[str, Any] = field(default_factory=dict)
    """Answers to the template's other questions (from ``--data``), passed on to Copier."""

    def to_data(self) -> dict[str, Any]:
        """The answers as Copier's ``data``."""
        data = {
            **self.extra,
            "project_name": self.project_name,
            "package_name": self.package_name,
            "description": self.description,
            "server": self.server,
            "proxy": self.proxy,
            "endpoints": [endpoint.to_record() for endpoint in self.endpoints],
        }
        return {key: value for key, value in data.items() if value is not None}


@dataclass(frozen=True)
class EndpointRequest:
    """An endpoint to add; fields left ``None`` get defaults from the project's answers."""

    name: str
    path: str | None = None
    style: str | None = None
    format: str | None = None
    source: str | None = None
    session: bool | None = None


@dataclass
class Changes:
    """What an operation changed (or, when pretending, would change) in a project."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    diff: str = ""
    """Unified diff of the modified files, and the added files in full (when pretending)."""
    conflicts: list[str] = field(default_factory=list)
    commit: str | None = None
    """The commit recording the change, if one was made."""
    fallback_identity: bool = False
    """The commit was made as `_git.FALLBACK_NAME`: no git identity is configured."""
    untracked: list[str] = field(default_factory=list)
    """New files not yet known to git (template files, ``.rej`` files), for backing out."""
    subject: str = ""
    """What the change is, as its commit message says (``Set server=gevent``)."""

    @property
    def empty(self) -> bool:
        """Whether nothing changed."""
        return not (self.added or self.modified or self.removed)


@dataclass(frozen=True)
class NewResult:
    """The outcome of `Worker.run_new`."""

    files: list[str]
    package_name: str
    committed: bool
    repository: Path | None = None
    """The repository the project was committed to (an enclosing one, or its own)."""
    fallback_identity: bool = False


@dataclass(frozen=True)
class UpdateResult:
    """The outcome of `Worker.run_update`."""

    from_version: str
    to_version: str
    changes: Changes
    up_to_date: bool = False
    notes: ReleaseNotes | None = None
    """The changelog between the two versions (None: the template has none to read)."""


UpdateState = Literal["current", "behind", "unknown"]


@dataclass(frozen=True)
class UpdateStatus:
    """The outcome of `Worker.check_update`."""

    current: str
    available: str | None
    state: UpdateState
    reason: str = ""
    """Why the state is ``unknown``: what could not be determined."""
    notes: ReleaseNotes | None = None
    """When behind: the changelog between the two versions (None: none to read)."""

    @property
    def behind(self) -> bool:
        """Whether a newer template version is available."""
        return self.state == "behind"


@dataclass
class Worker:
    """The options of one scaffolder operation, and the operations themselves.

    Attributes:
        project: The generated project to work on (`new` ignores it).
        pretend: Write nothing; report what would be created or changed.
        commit: Commit the result (``--no-commit`` turns it off; `new` uses ``git_init``).
        git_init: For `new`: create a git repository and commit the scaffold in it.
        conflict: How merge conflicts are left: ``inline`` markers or ``rej`` files.
        force: For `remove-endpoint`: remove even files the user edited.
        template: For `new`: the template location (``--template``).
        vcs_ref: For `new`: the template version (``--vcs-ref``).
        trust: Let a template other than the installed one run its tasks and migrations.
        warn: Where non-fatal warnings go.
    """

    project: Path = field(default_factory=Path.cwd)
    pretend: bool = False
    commit: bool = True
    git_init: bool = True
    conflict: Conflict = "inline"
    force: bool = False
    template: str | None = None
    vcs_ref: str | None = None
    trust: bool = False
    warn: Callable[[str], None] = _ignore
    _source: TemplateSource | None = field(default=None, init=False, repr=False)

    # ---------------------------------------------------------------- new
    def run_new(self, destination: Path, spec: ProjectSpec) -> NewResult:
        """Render a new project into ``destination``, then commit it to git.

        ``destination`` must not exist or be empty. Inside an existing git repository the
        project is committed there (only its own files) instead of getting a nested
        repository. On any failure everything created is removed again, parent folders
        included; the one exception is a commit refused by a git hook, which leaves the
        project staged for the user to decide.
        """
        check_destination(destination)
        if self.git_init and not self.pretend and shutil.which("git") is None:
            raise ScaffoldError(
                "git is not installed or not on PATH: install git, or pass --no-git to create "
                "the project without a repository"
            )
        source = self._new_source()
        questions = source_questions(source)
        unknown = sorted(set(spec.extra) - questions) if questions is not None else []
        if unknown:
            raise ScaffoldError(
                f"the template asks no question {', '.join(unknown)}; its questions: "
                f"{', '.join(sorted(questions or ()))}"
            )
        if not source.updatable:
            self.warn(
                ("git is not installed, so " if shutil.which("git") is None else "")
                + "this installation has no template history: the project will not be able "
                "to use add-endpoint, remove-endpoint or update"
            )
        if self.pretend:
            with tempfile.TemporaryDirectory(prefix="stream-scaffold-") as scratch:
                rendered = Path(scratch) / (destination.resolve().name or "project")
                self._render_new(source, rendered, spec)
                files = _list_files(rendered)
                package = load_answers(rendered).package_name
            return NewResult(files, package, committed=False)

        created = _topmost_missing(destination)
        existed = created is None
        enclosing = _enclosing_repository(destination) if self.git_init else None
        try:
            self._render_new(source, destination, spec)
            if not self.git_init:
                package = load_answers(destination).package_name
                return NewResult(_list_files(destination), package, committed=False)
            repository, fallback = self._commit_new(destination, spec, enclosing)
        except CommitRefused:
            raise
        except BaseException:
            if enclosing is not None:  # unstage what an interrupted commit had staged there
                _git.git(
                    ["reset", "--quiet", "--", str(destination.absolute())], enclosing, check=False
                )
            _remove_created(destination, created if created is not None else destination, existed)
            raise
        return NewResult(
            _list_files(destination),
            load_answers(destination).package_name,
            committed=True,
            repository=repository,
            fallback_identity=fallback,
        )

    def _render_new(self, source: TemplateSource, destination: Path, spec: ProjectSpec) -> None:
        """Copy the template and check that what came out is one of our projects."""
        self._copy(source.src_path, destination, spec.to_data(), source.vcs_ref)
        try:
            load_answers(destination)
        except ScaffoldError:
            raise ScaffoldError(
                f"{source.src_path} did not render a flask-stream-scaffold project (no answers "
                "file with its questions); pass this template, or leave out --template"
            ) from None

    def _commit_new(
        self, destination: Path, spec: ProjectSpec, enclosing: Path | None
    ) -> tuple[Path, bool]:
        """``git init`` (unless inside ``enclosing``) and commit; git failures say --no-git."""
        message = f"Scaffold {spec.project_name} with flask-stream-scaffold\n\n{RENDERED_TRAILER}"
        try:
            if enclosing is None:
                _git.init(destination)
            _, fallback = _git.commit_paths(destination, message)
        except _git.GitError as error:
            if error.command == "commit":
                where = "" if enclosing is None else f" in the repository {enclosing}"
                raise CommitRefused(
                    Changes(added=_list_files(destination)),
                    f"{error}: the project is created and its files are staged{where} but not "
                    "committed; commit them yourself once the hook passes, or remove "
                    f"{destination} and run again with --no-git",
                ) from None
            raise ScaffoldError(
                f"{error}; pass --no-git to create the project without git"
            ) from None
        return (enclosing or destination.resolve()), fallback

    def check_new_answers(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """Check answers for `run_new` with the template's validators, as they are given;
        return all the answers with the template's defaults (see `_names.check_answers`).

        Raises `ScaffoldError` with the validator's message for an answer in ``data``.
        """
        source = self._new_source()
        return _names.check_answers(
            source.src_path,
            source.vcs_ref,
            data,
            unsafe=self._unsafe(source.src_path),
            warn=self.warn,
        )

    def _new_source(self) -> TemplateSource:
        if self._source is None:
            self._source = source_for_new(self.template, self.vcs_ref)
        return self._source

    # --------------------------------------------------------------- list
    def list_endpoints(self) -> list[Endpoint]:
        """The project's endpoints, as recorded in its answers file."""
        return load_answers(self._project_dir()).endpoints

    # ------------------------------------------------------- add-endpoint
    def run_add_endpoint(self, request: EndpointRequest) -> Changes:
        """Add one endpoint: append it to the ``endpoints`` answer and re-render the project
        at its current template version; Copier's 3-way merge keeps the user's edits."""
        answers = self._open_project()
        existing = answers.endpoints
        endpoint = self._complete(request, existing)
        records = [*(e.to_record() for e in existing), endpoint.to_record()]
        self.check_project_answers({"endpoints": records})
        message = f"Add streaming endpoint {endpoint.name} ({endpoint.format}, {endpoint.path})"
        return self._rerender(answers, {"endpoints": records}, message, current=True)

    @staticmethod
    def _complete(request: EndpointRequest, existing: list[Endpoint]) -> Endpoint:
        """The endpoint to add: what the request gives, the rest from the project's
        endpoints. The template's validators judge the result (`run_add_endpoint`)."""
        default = _names.default_endpoint(request.name, existing)
        return Endpoint(
            name=request.name,
            path=default.path if request.path is None else request.path,
            style=_names.check_choice("style", request.style or default.style, _names.STYLES),
            format=_names.check_choice("format", request.format or default.format, _names.FORMATS),
            session=default.session if request.session is None else request.session,
            source=_names.check_choice("source", request.source or default.source, _names.SOURCES),
        )

    def endpoints_to_extend(self) -> list[Endpoint]:
        """The project's endpoints, once it is clear that `run_add_endpoint` can re-render the
        project (see `_open_project`): checked before any question, so no answer is wasted."""
        return self._open_project().endpoints

    def check_project_answers(self, data: dict[str, Any]) -> None:
        """Check answers changed in the project (``data``) with its template's validators, at
        the version it is on; raises `ScaffoldError` with the validator's message."""
        answers = load_answers(self._project_dir())
        _names.check_answers(
            answers.src_path,
            answers.require_commit(),
            {**_answers_data(answers), **data},
            unsafe=self._unsafe(answers.src_path),
            warn=self.warn,
        )

    # ---------------------------------------------------- remove-endpoint
    def run_remove_endpoint(self, name: str) -> Changes:
        """Remove one endpoint: drop its record and re-render.

        Its module and test disappear and the app stops registering it. Files of that endpoint
        which the user edited are only removed with ``force``.
        """
        answers = self._open_project()
        existing = answers.endpoints
        if name not in {e.name for e in existing}:
            known = ", ".join(e.name for e in existing) or "none"
            raise ScaffoldError(f"no endpoint named {name!r} in this project (endpoints: {known})")
        if len(existing) == 1:
            raise ScaffoldError(f"{name!r} is the project's only endpoint; a project needs one")
        remaining = [e.to_record() for e in existing if e.name != name]
        endpoint_files, edited = self._endpoint_files(answers, remaining)
        if edited and not self.force:
            refusal = (
                f"endpoint {name!r} has edited files: {', '.join(edited)}; "
                "keep your work elsewhere, or pass --force to remove them anyway"
            )
            if not self.pretend:
                raise ScaffoldError(refusal)
            # A preview shows what --force would do, with the refusal the real run gives.
            self.warn(f"without --force this is refused: {refusal}")

        def finish(project: Path) -> None:
            # Copier removes files the template no longer renders only when they are absent
            # from the new render *and* unchanged in its diff bookkeeping; make sure.
            for relative in endpoint_files:
                target = project / relative
                if target.is_file() or target.is_symlink():
                    target.unlink()
                    _prune_empty_parents(target.parent, project)

        return self._rerender(
            answers,
            {"endpoints": remaining},
            f"Remove streaming endpoint {name}",
            current=True,
            after=finish,
        )

    def _endpoint_files(
        self, answers: Answers, remaining: list[dict[str, Any]]
    ) -> tuple[list[str], list[str]]:
        """Files rendered only because of the removed endpoint, and those the user edited.

        Both are found by rendering the project's template version twice, with and without
        the endpoint, and comparing with the files in the project.
        """
        data = _answers_data(answers)
        with tempfile.TemporaryDirectory(prefix="stream-scaffold-") as scratch:
            before, after = Path(scratch) / "with", Path(scratch) / "without"
            commit = answers.require_commit()
            self._copy(answers.src_path, before, data, commit)
            self._copy(answers.src_path, after, {**data, "endpoints": remaining}, commit)
            only_before = sorted(set(_list_files(before)) - set(_list_files(after)))
            edited = [
                relative
                for relative in only_before
                if (self._project_dir() / relative).is_file()
                and (self._project_dir() / relative).read_bytes()
                != (before / relative).read_bytes()
            ]
        return only_before, edited

    # ---------------------------------------------------------------- set
    def run_set(self, assignments: list[tuple[str, str]]) -> Changes:
        """Change recorded answers (``server``, ``nginx``, ``description``...) and re-render
        at the project's current template version, 3-way merging the user's edits: the files
        follow the answers, as if the project had been created with them."""
        answers = self._open_project()
        changed: dict[str, Any] = {}
        for key, text in assignments:
            value = _answer_value(answers, key, text)
            if answers.raw.get(key) != value:
                changed[key] = value
        # Answers edited by hand since the last render are rendered now too (`_rerender`).
        render = {**_hand_edits(answers, _rendered_answers(answers)), **changed}
        if not render:
            return Changes()
        self.check_project_answers(changed)
        shown = ", ".join(f"{key}={_show(value)}" for key, value in render.items())
        return self._rerender(answers, changed, f"Set {shown}", current=True)

    def hand_edited(self) -> list[str]:
        """Answers changed (by hand) in the answers file since stream-scaffold last rendered
        the project: its files do not follow them until `run_set` renders them."""
        answers = load_answers(self._project_dir())
        return sorted(_hand_edits(answers, _rendered_answers(answers)))

    # ------------------------------------------------------------- update
    def run_update(self, to: str | None) -> UpdateResult:
        """Re-render the project at another template version (``to``, default: the version
        that ships with this CLI, or the source's latest tag), 3-way merging the user's edits.
        """
        answers = self._open_project()
        current = answers.require_commit()
        ref = to or default_update_ref(answers.src_path)
        target = _versions.describe(answers.src_path, ref)
        relation = _versions.relation(answers.src_path, current, target)
        repo = _versions.local_repository(answers.src_path)
        current_label = _versions.version_label(current, repo)
        if relation == "same":
            return UpdateResult(current_label, current_label, Changes(), up_to_date=True)
        if relation == "ahead":
            raise ScaffoldError(
                f"the project is on {current_label}, newer than "
                f"{_versions.version_label(target or '', repo)}; downgrades are not supported"
            )
        target_label = (
            _versions.version_label(target, repo) if target else (ref or "the latest version")
        )
        notes = _versions.release_notes(answers.src_path, current, target) if target else None
        changes = self._rerender(
            answers,
            {},
            f"Update flask-stream-scaffold template from {current_label} to {target_label}",
            current=False,
            vcs_ref=ref,
        )
        if not self.pretend:
            recorded = load_answers(self._project_dir()).commit or ""
            target_label = _versions.version_label(recorded, repo)
        return UpdateResult(current_label, target_label, changes, notes=notes)

    def check_update(self) -> UpdateStatus:
        """Which template version the project is on, which one `run_update` would take, and
        whether the first is behind the second; ``unknown`` says what could not be told."""
        answers = load_answers(self._project_dir())
        current = answers.require_commit()
        label = _versions.version_label(current)

        def unknown(reason: str) -> UpdateStatus:
            return UpdateStatus(current=label, available=None, state="unknown", reason=reason)

        problem = _versions.source_problem(answers.src_path, ANSWERS_FILE)
        if problem:
            return unknown(problem)
        try:
            prepare_for_project(answers.src_path)
            available = _versions.describe(answers.src_path, default_update_ref(answers.src_path))
        except ScaffoldError as error:
            return unknown(f"the available version: {error}")
        if available is None:
            return unknown(f"the latest version of the template {answers.src_path} (no tags)")
        repo = _versions.local_repository(answers.src_path)
        label = _versions.version_label(current, repo)
        relation, reason = _versions.explain_relation(answers.src_path, current, available)
        target = _versions.version_label(available, repo)
        if relation == "ahead":
            reason = (
                f"whether the project is up to date: it is on {label}, newer than {target}, "
                "the newest version known here; upgrade flask-stream-scaffold"
            )
        if relation in {"ahead", "unknown"}:
            return UpdateStatus(label, target, "unknown", reason)
        if relation == "same":
            return UpdateStatus(label, target, "current")
        notes = _versions.release_notes(answers.src_path, current, available)
        return UpdateStatus(label, target, "behind", notes=notes)

    # ------------------------------------------------------------ helpers
    def _unsafe(self, src_path: str) -> bool:
        """Whether the template at ``src_path`` may run its tasks and migrations: the
        installed template may, any other only with ``--trust``."""
        return self.trust or is_installed(src_path)

    def _copy(
        self, src_path: str, destination: Path, data: dict[str, Any], vcs_ref: str | None
    ) -> None:
        _copier.copy(src_path, destination, data, vcs_ref, self.warn, unsafe=self._unsafe(src_path))

    def _project_dir(self) -> Path:
        """The project: the nearest directory at or above ``project`` with an answers file
        (as git finds its repository), else ``project`` itself."""
        start = self.project.resolve()
        if not start.is_dir():
            raise ScaffoldError(f"project directory {self.project} does not exist")
        for candidate in (start, *start.parents):
            if (candidate / ANSWERS_FILE).is_file():
                return candidate
        return start

    def _open_project(self) -> Answers:
        """Load the project's answers, check that Copier can re-render it, and make its
        template available."""
        project = self._project_dir()
        answers = load_answers(project)
        if not _git.is_work_tree(project):
            raise ScaffoldError(
                f"{project} is not a git repository; Copier needs one to merge your edits "
                "(run: git init && git add -A && git commit -m 'Initial commit')"
            )
        dirty = _git.changed_files(project)
        if dirty:
            raise ScaffoldError(
                f"uncommitted changes in {_shorten(dirty)}; commit or stash them first"
            )
        markers = _git.conflict_marker_files(project)
        if markers:
            raise ScaffoldError(
                f"merge conflict markers left in {_shorten(markers)}; resolve them "
                "(look for '<<<<<<<') and commit first"
            )
        answers.require_commit()
        elsewhere = _git.staged_elsewhere(project)
        if elsewhere and self.commit and not self.pretend:
            self.warn(
                f"staged changes outside the project stay staged and out of the commit: "
                f"{_shorten(elsewhere)}"
            )
        prepare_for_project(answers.src_path)
        return answers

    def _rerender(
        self,
        answers: Answers,
        data: dict[str, Any],
        message: str,
        *,
        current: bool,
        vcs_ref: str | None = None,
        after: Callable[[Path], None] | None = None,
    ) -> Changes:
        """Run Copier's update on the project (or, when pretending, on a scratch clone of it),
        then report, commit, or report conflicts.

        Answers edited by hand since the scaffolder last rendered are rendered too, from the
        right base: Copier reads the answers the files were rendered with from the answers
        file, so those are committed there for the merge and the commit dropped right after.

        Whatever interrupts it (Ctrl-C, a failure) before the commit, the project is put back
        as it was: it was clean before, so ``HEAD`` is its state. A commit refused by a git
        hook keeps the result staged (`CommitRefused`): the user decides.
        """

        base, data = _with_hand_edits(answers, data)

        def apply(project: Path) -> Changes:
            with _answers_as_rendered(project, base):
                # Copier's rej mode writes the *template's* version into the file and the
                # user's hunks into the .rej, and rejects edits a 3-way merge resolves
                # cleanly; merging inline and then moving only real conflicts aside does what
                # users expect.
                _copier.update(
                    project,
                    data,
                    vcs_ref,
                    "inline",
                    self.warn,
                    unsafe=self._unsafe(answers.src_path),
                    current=current,
                )
                if after is not None:
                    after(project)
                if self.conflict == "rej":
                    _conflicts_to_rej(project)
                changes = _collect(project, with_diff=self.pretend)
            changes.subject = message
            return changes

        project = self._project_dir()
        if self.pretend:
            with _scratch_clone(project) as clone:
                return apply(clone)

        start = _git.head(project)
        try:
            changes = apply(project)
            if changes.conflicts or not self.commit or changes.empty:
                return changes
            self._commit_rerendered(project, changes, start)
        except CommitRefused:
            raise
        except BaseException:
            if _git.head(project) == start:
                _restore(project)
            raise
        return changes

    def _commit_rerendered(self, project: Path, changes: Changes, start: str | None) -> None:
        """Commit a re-render's ``changes`` as their subject says; a commit refused by a git
        hook raises `CommitRefused`, keeping them staged."""
        try:
            changes.commit, changes.fallback_identity = _git.commit_paths(
                project, f"{changes.subject}\n\n{RENDERED_TRAILER}"
            )
        except _git.GitError as error:
            if error.command != "commit" or _git.head(project) != start:
                raise
            raise CommitRefused(
                changes,
                f"{error}: the changes are staged but not committed; commit them yourself "
                "once the hook passes, or undo them with "
                f"'{UNDO_COMMAND}' in {project}",
            ) from None


RENDERED_TRAILER = "Rendered-by: flask-stream-scaffold"
"""Ends the message of every commit the scaffolder makes: its answers file is what the files
were rendered with, so later hand edits of it can be told apart."""

UNDO_COMMAND = "git restore --source=HEAD --staged --worktree -- ."
"""Puts a project's tracked files back as committed; deletes nothing the user wrote."""


class CommitRefused(ScaffoldError):
    """The commit was refused (a git hook, say); the result is kept staged.

    ``changes`` says what the command changed, for the command line to show.
    """

    def __init__(self, changes: Changes, message: str) -> None:
        super().__init__(message)
        self.changes = changes


def check_destination(destination: Path) -> None:
    """Refuse a destination for `new` that exists and is not an empty directory."""
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ScaffoldError(f"{destination} already exists and is not empty; choose another")


def _topmost_missing(destination: Path) -> Path | None:
    """The outermost folder `new` will create for ``destination`` (None: it exists)."""
    missing = None
    for candidate in (destination.absolute(), *destination.absolute().parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


def _enclosing_repository(destination: Path) -> Path | None:
    """The git working tree an (existing or future) ``destination`` would sit in.

    None when there is none, or when that tree ignores ``destination`` (a scratch or build
    folder): a project there is not part of it and gets a repository of its own.
    """
    existing = next(
        (p for p in (destination.absolute(), *destination.absolute().parents) if p.is_dir()),
        None,
    )
    if existing is None or not _git.is_work_tree(existing):
        return None
    top = _git.toplevel(existing)
    return None if _git.ignores(top, destination) else top


def _restore(project: Path) -> None:
    """Put ``project`` back as ``HEAD`` has it, ignoring a second Ctrl-C meanwhile."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: no signal to hold off
        previous = None
    try:
        _git.restore_head(project)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _conflicts_to_rej(project: Path) -> None:
    """Turn inline conflicts into ``.rej`` files: each conflicted file gets back the user's
    version, and the template's change to it (a unified diff) is written beside it."""
    top = _git.toplevel(project)
    for name in _git.unmerged_files(project):
        ours = _git.stage_blob(top, 2, name)
        if ours is None:
            continue
        base = (_git.stage_blob(top, 1, name) or b"").decode("utf-8", "replace")
        theirs = (_git.stage_blob(top, 3, name) or b"").decode("utf-8", "replace")
        target = top / name
        target.write_bytes(ours)
        _git.git(["reset", "--quiet", "--", name], top)
        diff = difflib.unified_diff(
            base.splitlines(keepends=True),
            theirs.splitlines(keepends=True),
            f"a/{name}",
            f"b/{name}",
        )
        Path(f"{target}.rej").write_text("".join(diff), encoding="utf-8")


# ---------------------------------------------------------------- helpers


def _rendered_answers(answers: Answers) -> dict[str, Any] | None:
    """The answers file as of the newest commit the scaffolder made in the project (None when
    there is none, e.g. a project made and changed with plain Copier)."""
    import yaml  # noqa: PLC0415

    project = answers.project
    log = _git.git(
        ["log", "--format=%H", f"--grep=^{RENDERED_TRAILER}$", "-1", "--", "."],
        project,
        check=False,
    )
    commit = log.stdout.strip()
    if log.returncode or not commit:
        return None
    shown = _git.git(["show", f"{commit}:./{ANSWERS_FILE}"], project, check=False)
    loaded = yaml.safe_load(shown.stdout) if shown.returncode == 0 else None
    return loaded if isinstance(loaded, dict) else None


def _hand_edits(answers: Answers, rendered: dict[str, Any] | None) -> dict[str, Any]:
    """The answers (their current values) that differ from those last rendered."""
    if rendered is None:
        return {}
    return {
        key: value
        for key, value in answers.raw.items()
        if not key.startswith("_") and key in rendered and rendered[key] != value
    }


def _with_hand_edits(
    answers: Answers, data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The answers to merge from (empty: those on file) and the ``data`` to render with, so
    that answers edited by hand since the scaffolder last rendered are rendered too."""
    rendered = _rendered_answers(answers)
    by_hand = _hand_edits(answers, rendered)
    if not by_hand:
        return {}, data
    base = {**answers.raw, **{key: (rendered or {})[key] for key in by_hand}}
    return base, {**by_hand, **data}


@contextmanager
def _answers_as_rendered(project: Path, base: dict[str, Any]) -> Iterator[None]:
    """Copier reads the answers the files were rendered with from the answers file: with
    ``base`` given, it is committed there for the merge, and that commit dropped right after
    (the merge result stays in the working tree)."""
    start = _git.head(project)
    if not base or start is None:
        yield
        return
    _write_answers(project, base)
    _git.commit_paths(project, "Answers as last rendered (dropped again)", verify=False)
    try:
        yield
    finally:
        if _git.head(project) != start:
            _git.git(["reset", "--quiet", "--soft", start], project)


def _write_answers(project: Path, values: dict[str, Any]) -> None:
    import yaml  # noqa: PLC0415

    text = yaml.safe_dump(values, sort_keys=False, allow_unicode=True)
    (project / ANSWERS_FILE).write_text(text, encoding="utf-8")


def _answer_value(answers: Answers, key: str, text: str) -> Any:  # noqa: ANN401  (any YAML value)
    """``text`` as the value of the answer ``key``, typed like the recorded answer. The
    template's validators judge it (`Worker.run_set`), as they judge `new`'s answers."""
    settable = sorted(k for k in answers.raw if not k.startswith("_") and k != "endpoints")
    if key == "endpoints":
        raise ScaffoldError("endpoints change with add-endpoint and remove-endpoint, not set")
    if key not in settable:
        raise ScaffoldError(
            f"no answer named {key!r}; the project's answers: {', '.join(settable)}"
        )
    recorded = answers.raw[key]
    if isinstance(recorded, bool):
        return _data.parse_bool(key, text)
    if key == "server":
        return _names.check_choice("server", text, _names.SERVERS)
    if isinstance(recorded, str):
        return text
    return _data.parse_yaml(key, text)


def _show(value: object) -> str:
    """An answer as the user would type it after ``KEY=``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _answers_data(answers: Answers) -> dict[str, Any]:
    """The recorded answers without Copier's private keys, as ``data`` for a render."""
    return {key: value for key, value in answers.raw.items() if not key.startswith("_")}


def _list_files(root: Path) -> list[str]:
    """Files under ``root`` (outside ``.git``) as sorted POSIX paths relative to it."""
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if (path.is_file() or path.is_symlink()) and ".git" not in path.relative_to(root).parts
    )


def _remove_created(destination: Path, created: Path, existed: bool) -> None:
    """Undo a failed `new`: remove the folders it created (``created`` is the outermost), or
    empty ``destination`` if it existed (empty) before."""
    if not destination.exists():
        shutil.rmtree(created, ignore_errors=True)
        return
    if not existed:
        shutil.rmtree(created, ignore_errors=True)
        return
    for child in destination.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _prune_empty_parents(directory: Path, root: Path) -> None:
    while directory != root and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent


def _shorten(paths: list[str], limit: int = 5) -> str:
    shown = ", ".join(paths[:limit])
    return shown if len(paths) <= limit else f"{shown} and {len(paths) - limit} more"


@contextmanager
def _scratch_clone(project: Path) -> Iterator[Path]:
    """A throw-away clone of the repository holding ``project``; yields the project in it."""
    top = _git.toplevel(project)
    with tempfile.TemporaryDirectory(prefix="stream-scaffold-") as scratch:
        clone = Path(scratch) / top.name
        # --shared borrows the objects instead of copying them: the clone only adds objects.
        _git.git(["clone", "--quiet", "--shared", "--", str(top), str(clone)], Path(scratch))
        yield clone / project.relative_to(top)


def _collect(project: Path, *, with_diff: bool) -> Changes:
    """Read what the last re-render did to ``project`` from ``git status``."""
    changes = Changes()
    unmerged = set(_git.unmerged_files(project))
    top = _git.toplevel(project)
    prefix = project.relative_to(top).as_posix()
    for status, name in _git.status_lines(project):
        relative = name.removeprefix(f"{prefix}/") if prefix != "." else name
        if status == "??":
            changes.untracked.append(relative)
        if relative.endswith(".rej") and status == "??":
            changes.conflicts.append(relative.removesuffix(".rej"))
        elif name in unmerged:
            changes.conflicts.append(relative)
            changes.modified.append(relative)
        elif status == "??" or "A" in status:
            changes.added.append(relative)
        elif "D" in status:
            changes.removed.append(relative)
        else:
            changes.modified.append(relative)
    changes.conflicts.sort()
    if with_diff and (changes.modified or changes.added):
        # Only ever in a scratch clone: intent-to-add makes the diff show new files in full.
        if changes.untracked:
            _git.git(["add", "--intent-to-add", "--", *changes.untracked], project)
        changes.diff = _git.git(["diff", "--no-color", "--no-ext-diff", "--", "."], project).stdout
    return changes


__all__ = [
    "ANSWERS_FILE",
    "Changes",
    "EndpointRequest",
    "NewResult",
    "ProjectSpec",
    "UpdateResult",
    "UpdateStatus",
    "Worker",
]
