"""The operations behind each command, carried by one `Worker` object.

Like Copier's own ``Worker``, a `Worker` holds the options of one operation and exposes one
``run_*`` method per operation; the command line only builds it and reports the result it
returns. Every method either completes, or raises `ScaffoldError` having changed nothing (the
one exception is a merge conflict, which is left in the tree on purpose, for the user to
resolve, and reported with the way back).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _copier, _git, _names, _versions
from ._answers import ANSWERS_FILE, Answers, Endpoint, load_answers
from ._errors import ScaffoldError
from ._template_source import (
    TemplateSource,
    default_update_ref,
    is_installed,
    source_for_new,
)
from ._versions import version_label

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

    def to_data(self) -> dict[str, Any]:
        """The answers as Copier's ``data``."""
        data = {
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
    """Unified diff of the modified files (filled when pretending)."""
    conflicts: list[str] = field(default_factory=list)
    commit: str | None = None
    """The commit recording the change, if one was made."""

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


@dataclass(frozen=True)
class UpdateResult:
    """The outcome of `Worker.run_update`."""

    from_version: str
    to_version: str
    changes: Changes
    up_to_date: bool = False


@dataclass(frozen=True)
class UpdateStatus:
    """The outcome of `Worker.check_update`."""

    current: str
    available: str | None
    behind: bool


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
        """Render a new project into ``destination``, then ``git init`` and commit it.

        ``destination`` must not exist or be empty. On any failure everything created is
        removed again.
        """
        if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
            raise ScaffoldError(f"{destination} already exists and is not empty; choose another")
        source = self._new_source()
        if not source.updatable:
            self.warn(
                "this installation has no template history: the project will not be able to "
                "use add-endpoint, remove-endpoint or update"
            )
        if self.pretend:
            with tempfile.TemporaryDirectory(prefix="stream-scaffold-") as scratch:
                rendered = Path(scratch) / destination.name
                self._copy(source.src_path, rendered, spec.to_data(), source.vcs_ref)
                files = _list_files(rendered)
                package = load_answers(rendered).package_name
            return NewResult(files, package, committed=False)

        existed = destination.exists()
        try:
            self._copy(source.src_path, destination, spec.to_data(), source.vcs_ref)
            committed = False
            if self.git_init:
                _git.init(destination)
                _git.commit_all(
                    destination, f"Scaffold {spec.project_name} with flask-stream-scaffold"
                )
                committed = True
        except BaseException:
            _remove_created(destination, existed)
            raise
        return NewResult(
            _list_files(destination), load_answers(destination).package_name, committed
        )

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
        _names.check_answers(
            answers.src_path,
            answers.require_commit(),
            {**_answers_data(answers), "endpoints": records},
            unsafe=self._unsafe(answers.src_path),
            warn=self.warn,
        )
        message = f"Add streaming endpoint {endpoint.name} ({endpoint.format}, {endpoint.path})"
        return self._rerender(answers, {"endpoints": records}, message, current=True)

    @staticmethod
    def _complete(request: EndpointRequest, existing: list[Endpoint]) -> Endpoint:
        """The endpoint to add: what the request gives, the rest from the project's
        endpoints. The template's validators judge the result (`run_add_endpoint`)."""
        path = request.path if request.path is not None else _names.default_path(request.name)
        # The style and session use of the project's endpoints read best beside them.
        style = request.style or (existing[-1].style if existing else _names.STYLES[0])
        session = (
            request.session
            if request.session is not None
            else any(endpoint.session for endpoint in existing)
        )
        return Endpoint(
            name=request.name,
            path=path,
            style=_names.check_choice("style", style, _names.STYLES),
            format=_names.check_choice("format", request.format or "sse", _names.FORMATS),
            session=session,
            source=_names.check_choice("source", request.source or "ticks", _names.SOURCES),
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
        if relation == "same":
            label = version_label(current)
            return UpdateResult(label, label, Changes(), up_to_date=True)
        if relation == "ahead":
            raise ScaffoldError(
                f"the project is on {version_label(current)}, newer than "
                f"{version_label(target or '')}; downgrades are not supported"
            )
        message_to = version_label(target) if target else (ref or "the latest version")
        changes = self._rerender(
            answers,
            {},
            f"Update flask-stream-scaffold template from {version_label(current)} to {message_to}",
            current=False,
            vcs_ref=ref,
        )
        if not self.pretend:
            recorded = load_answers(self._project_dir()).commit or ""
            message_to = version_label(recorded)
        return UpdateResult(version_label(current), message_to, changes)

    def check_update(self) -> UpdateStatus:
        """Which template version the project is on, and which one `run_update` would take."""
        answers = load_answers(self._project_dir())
        current = answers.require_commit()
        ref = default_update_ref(answers.src_path)
        available = _versions.describe(answers.src_path, ref)
        return UpdateStatus(
            current=version_label(current),
            available=version_label(available) if available else None,
            behind=_versions.relation(answers.src_path, current, available) == "behind",
        )

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
        project = self.project.resolve()
        if not project.is_dir():
            raise ScaffoldError(f"project directory {self.project} does not exist")
        return project

    def _open_project(self) -> Answers:
        """Load the project's answers and check that Copier can re-render it."""
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
        answers.require_commit()
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

        Copier renders the new version straight into the project; if it fails half-way, the
        project is put back as it was (it was clean: `_open_project` checked).
        """

        def apply(project: Path) -> None:
            _copier.update(
                project,
                data,
                vcs_ref,
                self.conflict,
                self.warn,
                unsafe=self._unsafe(answers.src_path),
                current=current,
            )
            if after is not None:
                after(project)

        project = self._project_dir()
        if self.pretend:
            with _scratch_clone(project) as clone:
                apply(clone)
                changes = _collect(clone, with_diff=True)
            return changes

        try:
            apply(project)
        except BaseException:
            _git.restore_head(project)
            raise
        changes = _collect(project, with_diff=False)
        if changes.conflicts:
            return changes
        if self.commit and not changes.empty:
            changes.commit = _git.commit_all(project, message)
        return changes


# ---------------------------------------------------------------- helpers


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


def _remove_created(destination: Path, existed: bool) -> None:
    """Undo a failed `new`: remove the directory, or empty it if it existed (empty) before."""
    if not destination.exists():
        return
    if not existed:
        shutil.rmtree(destination, ignore_errors=True)
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
    if with_diff and changes.modified:
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
