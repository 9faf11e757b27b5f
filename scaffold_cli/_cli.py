"""The ``stream-scaffold`` command line: parse options, call the `Worker`, report.

Nothing here decides how a project is rendered; that is `scaffold_cli._worker`. Every user
error surfaces as a `ScaffoldError` and is printed as one ``Error: ...`` line on stderr with
exit status 1.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from . import __version__, _names
from ._answers import Endpoint
from ._errors import ScaffoldError
from ._help import Group
from ._names import ConflictMode, Format, Proxy, Server, Source, Style
from .check import OutputFormat

if TYPE_CHECKING:
    from ._worker import Changes, Worker

app = typer.Typer(
    name="stream-scaffold",
    cls=Group,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

_PROJECT_PANEL = "Project"
_ENDPOINT_PANEL = "First endpoint"
_SOURCE_HELP = (
    "ticks: events computed in the request; channel: events published elsewhere (sse or ndjson)."
)
_BEHAVIOUR_PANEL = "Behaviour"
_ADVANCED_PANEL = "Advanced"

T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


def _warn(message: str) -> None:
    typer.echo(f"Warning: {message}", err=True)


def _guard(action: Callable[[], T]) -> T:
    """Run ``action``; turn a `ScaffoldError` into ``Error: ...`` and exit status 1, and
    Ctrl-C (at a prompt too) into ``Aborted.`` and exit status 130."""
    # A prompt turns Ctrl-C into typer's Abort (typer carries its own click: the click
    # package is not a dependency of this one, nor of typer).
    aborted = (KeyboardInterrupt, typer.Abort)
    try:
        return action()
    except ScaffoldError as error:
        changes = getattr(error, "changes", None)
        if changes is not None:
            # A refused commit keeps the result: show exactly what it is.
            _report_changes(changes, pretend=False)
        _fail(str(error))
    except aborted:
        typer.echo("Aborted.", err=True)
        raise typer.Exit(130) from None


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"stream-scaffold {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Show the version (which is also the template version) and exit.",
            callback=_version_callback,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Scaffold Flask projects whose streaming endpoints are done right.

    [b]new[/b] creates a project; [b]add-endpoint[/b], [b]remove-endpoint[/b] and [b]list[/b]
    manage its endpoints; [b]set[/b] changes its other answers; [b]update[/b] moves it to a newer
    template version, keeping your edits.
    """


# ------------------------------------------------------------------ prompts
def _interactive(defaults: bool) -> bool:
    """Ask questions only on a terminal and without ``--defaults``."""
    return not defaults and sys.stdin.isatty()


def _ask(label: str, default: str, check: Callable[[str], str]) -> str:
    while True:
        value: str = typer.prompt(label, default=default)
        try:
            return check(value.strip())
        except ScaffoldError as error:
            typer.echo(f"  {error}", err=True)


def _value(
    given: str | None,
    label: str,
    default: str,
    check: Callable[[str], str],
    interactive: bool,
) -> str:
    if given is not None:
        return check(given)
    if interactive:
        return _ask(label, default, check)
    return check(default)


def _choice(what: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    return lambda value: _names.check_choice(what, value, choices)


def _flag(given: bool | None, label: str, default: bool, interactive: bool) -> bool:
    if given is not None:
        return given
    if interactive:
        return typer.confirm(label, default=default)
    return default


class _Answers:
    """The answers `new` has so far. On a terminal each one is checked as it is given, by the
    template's own validators (`Worker.check_new_answers`), so a bad one is asked again; the
    render checks them all in any case."""

    def __init__(self, worker: Worker, interactive: bool) -> None:
        self.worker = worker
        self.interactive = interactive
        self.data: dict[str, Any] = {}

    def checker(self, question: str) -> Callable[[str], str]:
        """A check for ``_value``: the answer to ``question``, as typed."""
        return lambda value: self._check(question, value, value)

    def endpoint_checker(
        self, prior: list[Endpoint], name: str | None = None
    ) -> Callable[[str], str]:
        """A check for a new endpoint's name, or (given the ``name``) for its path."""

        def check(value: str) -> str:
            endpoint = Endpoint(
                name=value if name is None else name,
                path=_names.default_path(value) if name is None else value,
                style=_names.STYLES[0],
                format=_names.FORMATS[0],
                session=False,
            )
            records = [e.to_record() for e in (*prior, endpoint)]
            return self._check("endpoints", records, value)

        return check

    def default(self, question: str) -> str:
        """The template's default for ``question`` given the answers so far ("" if unknown)."""
        recorded = self.worker.check_new_answers(self.data) if self.interactive else None
        return str((recorded or {}).get(question, ""))

    def _check(self, question: str, answer: object, value: str) -> str:
        if self.interactive:
            self.worker.check_new_answers({**self.data, question: answer})
        self.data[question] = answer
        return value


def _ask_more_endpoints(first: Endpoint, style: str, answers: _Answers) -> list[Endpoint]:
    endpoints = [first]
    while typer.confirm("Add another endpoint?", default=False):
        name = _ask("Endpoint name", "", answers.endpoint_checker(endpoints))
        path = _ask(
            "URL path", _names.default_path(name), answers.endpoint_checker(endpoints, name=name)
        )
        endpoints.append(
            Endpoint(
                name=name,
                path=path,
                style=_ask(
                    f"Style ({'|'.join(_names.STYLES)})", style, _choice("style", _names.STYLES)
                ),
                format=_ask(
                    f"Format ({'|'.join(_names.FORMATS)})", "sse", _choice("format", _names.FORMATS)
                ),
                session=typer.confirm("Read and write the session?", default=False),
            )
        )
    return endpoints


# ---------------------------------------------------------------------- new
@app.command()
def new(  # noqa: PLR0917  (one parameter per command-line option)
    destination: Annotated[
        Path, typer.Argument(help="Directory to create (must not exist, or be empty).")
    ],
    name: Annotated[
        str | None,
        typer.Option(
            help="Project (distribution) name. Default: the directory name.",
            rich_help_panel=_PROJECT_PANEL,
        ),
    ] = None,
    package: Annotated[
        str | None,
        typer.Option(
            help="Import package under src/. Default: derived from the name.",
            rich_help_panel=_PROJECT_PANEL,
        ),
    ] = None,
    description: Annotated[
        str | None,
        typer.Option(metavar="TEXT", help="One-line description.", rich_help_panel=_PROJECT_PANEL),
    ] = None,
    server: Annotated[
        Server | None,
        typer.Option(
            help="gunicorn worker class for long-lived streams.", rich_help_panel=_PROJECT_PANEL
        ),
    ] = None,
    proxy: Annotated[
        Proxy | None,
        typer.Option(
            help="Reverse proxy config in deploy/ (TLS + HTTP/2, no buffering).",
            rich_help_panel=_PROJECT_PANEL,
        ),
    ] = None,
    nginx: Annotated[
        bool | None,
        typer.Option(
            "--nginx/--no-nginx",
            help="Same as --proxy nginx / --proxy none (kept from earlier versions).",
            rich_help_panel=_PROJECT_PANEL,
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            metavar="NAME",
            help="Name of the first endpoint (snake_case).",
            rich_help_panel=_ENDPOINT_PANEL,
        ),
    ] = None,
    style: Annotated[
        Style | None,
        typer.Option(
            help="@stream_with_context on the generator, or wrapping it in the Response.",
            rich_help_panel=_ENDPOINT_PANEL,
        ),
    ] = None,
    format_: Annotated[
        Format | None,
        typer.Option(
            "--format",
            help="Server-Sent Events, JSON lines or text.",
            rich_help_panel=_ENDPOINT_PANEL,
        ),
    ] = None,
    path: Annotated[
        str | None,
        typer.Option(
            help="URL path. Default: /NAME with '_' as '-'.", rich_help_panel=_ENDPOINT_PANEL
        ),
    ] = None,
    source: Annotated[
        Source | None,
        typer.Option(help=_SOURCE_HELP, rich_help_panel=_ENDPOINT_PANEL),
    ] = None,
    session: Annotated[
        bool | None,
        typer.Option(
            "--session/--no-session",
            help="Read and write the session before streaming.",
            rich_help_panel=_ENDPOINT_PANEL,
        ),
    ] = None,
    defaults: Annotated[
        bool,
        typer.Option(
            "--defaults",
            "-y",
            help="Ask nothing; use defaults for missing values.",
            rich_help_panel=_BEHAVIOUR_PANEL,
        ),
    ] = False,
    pretend: Annotated[
        bool,
        typer.Option(
            "--pretend",
            "-n",
            help="Write nothing; show what would be created.",
            rich_help_panel=_BEHAVIOUR_PANEL,
        ),
    ] = False,
    no_git: Annotated[
        bool,
        typer.Option(
            "--no-git",
            help="Do not create a git repository or commit.",
            rich_help_panel=_BEHAVIOUR_PANEL,
        ),
    ] = False,
    template: Annotated[
        str | None,
        typer.Option(
            metavar="SRC",
            help="Template location (git repository, path or URL) instead of the installed one.",
            rich_help_panel=_ADVANCED_PANEL,
        ),
    ] = None,
    vcs_ref: Annotated[
        str | None,
        typer.Option(
            metavar="REF",
            help="Template version (tag or commit) to render.",
            rich_help_panel=_ADVANCED_PANEL,
        ),
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            "-d",
            metavar="KEY=VALUE",
            help="An answer, as YAML (repeatable), e.g. -d server=gevent or "
            "-d 'endpoints=[{name: a}, {name: b, format: text}]'. Options win over it.",
            rich_help_panel=_ADVANCED_PANEL,
        ),
    ] = None,
    data_file: Annotated[
        Path | None,
        typer.Option(
            "--data-file",
            metavar="FILE",
            help="A YAML file of answers (Copier's --data-file); --data wins over it.",
            dir_okay=False,
            rich_help_panel=_ADVANCED_PANEL,
        ),
    ] = None,
    trust: TrustOption = False,
) -> None:
    """Create a new Flask project with streaming endpoints, and commit it to git."""
    from ._data import load_data, parse_bool  # noqa: PLC0415
    from ._worker import ProjectSpec, Worker, check_destination  # noqa: PLC0415

    # Before any question: an answer typed for a destination that cannot be used is wasted.
    _guard(lambda: check_destination(destination))
    given = _guard(lambda: load_data(data_file, data or ()))
    interactive = _interactive(defaults)
    worker = Worker(
        pretend=pretend,
        git_init=not no_git,
        template=template,
        vcs_ref=vcs_ref,
        trust=trust,
        warn=_warn,
    )
    answers = _Answers(worker, interactive)

    def pick(option: object, key: str) -> str | None:
        value = option if option is not None else given.pop(key, None)
        given.pop(key, None)
        return None if value is None else str(value)

    def pick_flag(option: bool | None, key: str) -> bool | None:
        value = given.pop(key, None)
        if option is not None:
            return option
        return None if value is None else parse_bool(key, value)

    def build() -> ProjectSpec:
        given_name = pick(name, "project_name")
        project_name = _value(
            given_name,
            "Project name",
            _name_from_directory(destination) if given_name is None else given_name,
            answers.checker("project_name"),
            interactive,
        )
        given_package = pick(package, "package_name")
        package_name = (
            _value(
                given_package,
                "Package name",
                answers.default("package_name"),
                answers.checker("package_name"),
                interactive,
            )
            if given_package is not None or interactive
            else None
        )
        about = _value(
            pick(description, "description"),
            "Description",
            "Streaming endpoints done right with Flask",
            answers.checker("description"),
            interactive,
        )
        worker_class = _value(
            pick(server, "server"),
            f"gunicorn worker ({'|'.join(_names.SERVERS)})",
            "gthread",
            _choice("server", _names.SERVERS),
            interactive,
        )
        front = _value(
            _names.proxy_option(pick(proxy, "proxy"), pick_flag(nginx, "nginx")),
            f"Reverse proxy ({'|'.join(_names.PROXIES)})",
            "nginx",
            _choice("proxy", _names.PROXIES),
            interactive,
        )
        listed = given.pop("endpoints", None)
        if listed is not None:
            if any(o is not None for o in (endpoint, style, format_, path, session)):
                raise ScaffoldError(
                    "give the endpoints either as data (endpoints=...) or with --endpoint "
                    "and its options, not both"
                )
            endpoints = _endpoints_from_data(listed)
            return ProjectSpec(
                project_name, package_name, about, worker_class, front, endpoints, dict(given)
            )
        first_name = _value(
            endpoint, "Endpoint name", "events", answers.endpoint_checker([]), interactive
        )
        first_style = _value(
            style,
            f"Style ({'|'.join(_names.STYLES)})",
            "decorator",
            _choice("style", _names.STYLES),
            interactive,
        )
        first = Endpoint(
            name=first_name,
            path=_value(
                path,
                "URL path",
                _names.default_path(first_name),
                answers.endpoint_checker([], name=first_name),
                interactive,
            ),
            style=first_style,
            format=_value(
                format_,
                f"Format ({'|'.join(_names.FORMATS)})",
                "sse",
                _choice("format", _names.FORMATS),
                interactive,
            ),
            session=_flag(session, "Read and write the session?", True, interactive),
            source=source or "ticks",
        )
        endpoints = _ask_more_endpoints(first, first_style, answers) if interactive else [first]
        return ProjectSpec(
            project_name, package_name, about, worker_class, front, endpoints, dict(given)
        )

    spec = _guard(build)
    result = _guard(lambda: worker.run_new(destination, spec))
    if pretend:
        typer.echo(f"Would create {destination} with {len(result.files)} files:")
        for file in result.files:
            typer.echo(f"  {file}")
        return
    typer.echo(
        f"Created {destination} ({len(result.files)} files"
        f"{', committed' if result.committed else ''})."
    )
    if result.repository is not None and result.repository != destination.resolve():
        typer.echo(
            f"It is inside the git repository {result.repository}: committed there (only "
            "its own files), without a repository of its own."
        )
    if result.fallback_identity:
        _warn_fallback_identity()
    typer.echo("\nNext steps:")
    typer.echo(f"  cd {shlex.quote(str(destination))}")
    typer.echo("  python -m venv .venv && . .venv/bin/activate")
    typer.echo("  pip install -e '.[dev]'")
    typer.echo("  python -m pytest")
    typer.echo(f"  flask --app {result.package_name} run --debug")


def _name_from_directory(destination: Path) -> str:
    """The default project name: the destination folder's name (``.`` is the current one),
    with runs of spaces and ASCII punctuation a distribution name cannot hold turned into
    ``-``. Other characters are not guessed at: the error asks for ``--name``."""
    folder = destination.resolve().name
    cleaned = re.sub(r"[\s!-,/:-@\[-^`{-~]+", "-", folder).strip("-._")
    if not cleaned.isascii() or not cleaned:
        raise ScaffoldError(
            f"cannot make a project name of the folder name {folder!r}; pass --name NAME"
        )
    return cleaned  # the template's validator judges it like any other name


def _endpoints_from_data(listed: object) -> list[Endpoint]:
    """The ``endpoints`` answer given as data: records with at least a name; the rest of
    each record defaults as in add-endpoint (path from the name, the style before it, sse,
    no session)."""
    if not isinstance(listed, list) or not listed:
        raise ScaffoldError("endpoints must be a non-empty list of records, e.g. [{name: events}]")
    endpoints: list[Endpoint] = []
    for record in listed:
        if not isinstance(record, dict) or "name" not in record:
            raise ScaffoldError(f"endpoint record {record!r} needs at least a name")
        name = str(record["name"])
        style = record.get("style", endpoints[-1].style if endpoints else _names.STYLES[0])
        endpoints.append(
            Endpoint(
                name=name,
                path=str(record.get("path", _names.default_path(name))),
                style=str(style),
                format=str(record.get("format", _names.FORMATS[0])),
                session=bool(record.get("session", False)),
                source=str(record.get("source", _names.SOURCES[0])),
            )
        )
    return endpoints


def _warn_fallback_identity() -> None:
    from ._git import FALLBACK_EMAIL, FALLBACK_NAME  # noqa: PLC0415

    _warn(
        f"no git identity is configured: committed as {FALLBACK_NAME} <{FALLBACK_EMAIL}>; "
        "set yours with git config --global user.name/user.email"
    )


# ---------------------------------------------------------- project commands
ProjectOption = Annotated[
    Path,
    typer.Option(
        "--project",
        "-p",
        metavar="DIR",
        help="The generated project. Default: the current directory.",
        show_default=False,
        file_okay=False,
    ),
]
PretendOption = Annotated[
    bool,
    typer.Option(
        "--pretend", "-n", help="Change nothing; show the files, the diff and new files in full."
    ),
]
NoCommitOption = Annotated[
    bool, typer.Option("--no-commit", help="Leave the changes uncommitted in the working tree.")
]
ConflictOption = Annotated[
    ConflictMode,
    typer.Option(
        help="Leave conflicts as inline markers, or keep your version and write the "
        "template's change beside it as FILE.rej."
    ),
]
TrustOption = Annotated[
    bool,
    typer.Option(
        "--trust",
        help="Let a template other than the installed one run its tasks and migrations.",
        rich_help_panel=_ADVANCED_PANEL,
    ),
]


def _project_worker(
    project: Path,
    pretend: bool,
    no_commit: bool,
    conflict: ConflictMode,
    trust: bool,
    *,
    force: bool = False,
) -> Worker:
    """The `Worker` of a project command, from the options they share."""
    from ._worker import Worker  # noqa: PLC0415

    return Worker(
        project=project,
        pretend=pretend,
        commit=not no_commit,
        conflict=conflict,
        trust=trust,
        force=force,
        warn=_warn,
    )


def _report_done(changes: Changes, pretend: bool, done: str) -> None:
    """Report a project command's changes, then ``DONE (committed).``"""
    _report_changes(changes, pretend)
    if not pretend:
        state = "committed" if changes.commit else "left uncommitted"
        typer.echo(f"{done} ({state}).")


def _report_changes(changes: object, pretend: bool) -> None:
    from ._worker import Changes  # noqa: PLC0415

    assert isinstance(changes, Changes)
    verb = {"added": "would add", "modified": "would modify", "removed": "would remove"}
    for kind in ("added", "modified", "removed"):
        files: list[str] = getattr(changes, kind)
        if files:
            typer.echo(f"{verb[kind] if pretend else kind.capitalize()}:")
            for file in files:
                typer.echo(f"  {file}")
    if pretend and changes.diff:
        typer.echo("")
        typer.echo(changes.diff.rstrip("\n"))
    if changes.conflicts:
        from ._worker import UNDO_COMMAND  # noqa: PLC0415

        listed = ", ".join(changes.conflicts)
        if pretend:
            _warn(f"this would leave merge conflicts in {listed}")
            return
        # Backing out removes only what this command created, never a file of the user's.
        created = " ".join(shlex.quote(name) for name in changes.untracked)
        back_out = UNDO_COMMAND + (f" && rm -- {created}" if created else "")
        _fail(
            f"merge conflicts in {listed}: resolve them (look for '<<<<<<<' markers or .rej "
            f"files) and commit, or back out with '{back_out}'"
        )
    if changes.fallback_identity:
        _warn_fallback_identity()


@app.command("add-endpoint")
def add_endpoint(  # noqa: PLR0917  (one parameter per command-line option)
    name: Annotated[str, typer.Argument(help="Endpoint name (snake_case).")],
    project: ProjectOption = Path(),
    style: Annotated[
        Style | None,
        typer.Option(help="Default: the style the project's last endpoint uses."),
    ] = None,
    format_: Annotated[Format | None, typer.Option("--format", help="Default: sse.")] = None,
    source: Annotated[Source | None, typer.Option(help=_SOURCE_HELP + " Default: ticks.")] = None,
    path: Annotated[
        str | None, typer.Option(help="URL path. Default: /NAME with '_' as '-'.")
    ] = None,
    session: Annotated[
        bool | None,
        typer.Option(
            "--session/--no-session",
            help="Read and write the session before streaming. "
            "Default: yes if one of the project's endpoints does.",
        ),
    ] = None,
    pretend: PretendOption = False,
    conflict: ConflictOption = "inline",
    no_commit: NoCommitOption = False,
    trust: TrustOption = False,
) -> None:
    """Add a streaming endpoint, keeping every edit you made (3-way merge)."""
    from ._worker import EndpointRequest  # noqa: PLC0415

    worker = _project_worker(project, pretend, no_commit, conflict, trust)
    request = EndpointRequest(
        name=name, path=path, style=style, format=format_, session=session, source=source
    )
    changes = _guard(lambda: worker.run_add_endpoint(request))
    _report_done(changes, pretend, f"Added endpoint {name}")


@app.command("remove-endpoint")
def remove_endpoint(  # noqa: PLR0917  (one parameter per command-line option)
    name: Annotated[str, typer.Argument(help="Endpoint to remove.")],
    project: ProjectOption = Path(),
    force: Annotated[
        bool, typer.Option("--force", help="Remove the endpoint's files even if you edited them.")
    ] = False,
    pretend: PretendOption = False,
    conflict: ConflictOption = "inline",
    no_commit: NoCommitOption = False,
    trust: TrustOption = False,
) -> None:
    """Remove a streaming endpoint: its module and test go, the app stops registering it."""
    worker = _project_worker(project, pretend, no_commit, conflict, trust, force=force)
    changes = _guard(lambda: worker.run_remove_endpoint(name))
    _report_done(changes, pretend, f"Removed endpoint {name}")


@app.command("list")
def list_(
    project: ProjectOption = Path(),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the endpoints as a JSON list of records.")
    ] = False,
) -> None:
    """List the project's streaming endpoints."""
    from ._worker import Worker  # noqa: PLC0415

    endpoints = _guard(Worker(project=project).list_endpoints)
    if as_json:
        typer.echo(json.dumps([item.to_record() for item in endpoints], indent=2))
        return
    # Plain aligned columns: never cut to the terminal's width, and easy to grep or paste.
    rows = [("name", "path", "style", "format", "session", "source")] + [
        (
            item.name,
            item.path,
            item.style,
            item.format,
            "yes" if item.session else "no",
            item.source,
        )
        for item in endpoints
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@app.command()
def update(  # noqa: PLR0917  (one parameter per command-line option)
    project: ProjectOption = Path(),
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="REF",
            help="Template version (tag) to move to. Default: the version "
            "that ships with this CLI.",
        ),
    ] = None,
    pretend: PretendOption = False,
    conflict: ConflictOption = "inline",
    no_commit: NoCommitOption = False,
    trust: TrustOption = False,
) -> None:
    """Re-render the project at a newer template version, keeping your edits."""
    worker = _project_worker(project, pretend, no_commit, conflict, trust)
    result = _guard(lambda: worker.run_update(to))
    if result.up_to_date:
        typer.echo(f"Already up to date (template {result.to_version}).")
        edited = _guard(worker.hand_edited)
        if edited:
            _warn(
                f"{', '.join(edited)} changed in .copier-answers.yml after the last render, and "
                "the files do not follow; run 'stream-scaffold set' to render them"
            )
        return
    verb = "Would update" if pretend else "Updated"
    typer.echo(f"{verb} template {result.from_version} -> {result.to_version}.")
    _report_changes(result.changes, pretend)
    if not pretend and result.changes.commit:
        typer.echo("Committed.")


CHECK_UPDATE_UNKNOWN = 2
"""``check-update``'s exit status when it cannot tell whether the project is up to date."""


@app.command("check-update")
def check_update(project: ProjectOption = Path()) -> None:
    """Show the project's template version and the one available.

    Exit status 0 when up to date, 1 when behind, 2 when it cannot tell (it says what it could
    not determine).
    """
    from ._worker import Worker  # noqa: PLC0415

    status = _guard(Worker(project=project).check_update)
    typer.echo(f"Project template version: {status.current}")
    typer.echo(f"Available: {status.available or 'unknown'}")
    if status.state == "unknown":
        typer.echo(
            f"Cannot tell whether an update is available: could not determine {status.reason}."
        )
        raise typer.Exit(CHECK_UPDATE_UNKNOWN)
    if status.behind:
        typer.echo("An update is available: run 'stream-scaffold update'.")
        raise typer.Exit(1)
    typer.echo("Up to date.")


@app.command("set")
def set_(  # noqa: PLR0917  (one parameter per command-line option)
    assignments: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE",
            help="Answers to change, e.g. server=gevent nginx=false 'description=Live logs'. "
            "None: render the answers edited by hand in .copier-answers.yml.",
            show_default=False,
        ),
    ] = None,
    project: ProjectOption = Path(),
    pretend: PretendOption = False,
    conflict: ConflictOption = "inline",
    no_commit: NoCommitOption = False,
    trust: TrustOption = False,
) -> None:
    """Change answers given at creation and re-render the project with them.

    Answers such as server, nginx or description; every edit you made is kept (3-way merge).
    Without KEY=VALUE it renders answers edited by hand in .copier-answers.yml.
    """
    from ._data import split_assignment  # noqa: PLC0415

    pairs = _guard(lambda: [split_assignment(item) for item in assignments or []])
    worker = _project_worker(project, pretend, no_commit, conflict, trust)
    changes = _guard(lambda: worker.run_set(pairs))
    if changes.empty:
        typer.echo("Nothing to change: the project already has these answers.")
        return
    _report_done(changes, pretend, changes.subject)


# ------------------------------------------------------------ check and probe
def _codes(values: list[str] | None) -> list[str]:
    """``--select FS1 --select FS301,FS302``: the codes, validated against the rules."""
    from .check import CheckError, check_selector  # noqa: PLC0415

    codes = [code for value in values or [] for code in value.split(",") if code.strip()]
    try:
        return [check_selector(code) for code in codes]
    except ValueError as error:
        raise CheckError(str(error)) from None


@app.command()
def check(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or directories to check. Default: the current directory."),
    ] = None,
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--format", help="text (path:line:col: CODE message), json, or github annotations."
        ),
    ] = "text",
    select: Annotated[
        list[str] | None,
        typer.Option(
            metavar="CODE", help="Report only these codes or prefixes (FS1, FS301); repeatable."
        ),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option(metavar="CODE", help="Leave out these codes or prefixes; repeatable."),
    ] = None,
) -> None:
    """Find streaming mistakes in a Flask project: its code, gunicorn and nginx configs.

    Exit status 0 when clean, 1 with findings, 2 when the check could not run.
    Silence one line with a comment: [b]# stream-scaffold: ignore[FS101][/b].
    """
    from .check import CheckError, check_paths, render  # noqa: PLC0415

    try:
        findings = check_paths(paths or [Path()], select=_codes(select), ignore=_codes(ignore))
    except CheckError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(render(findings, output), nl=False)
    raise typer.Exit(1 if findings else 0)


@app.command()
def probe(  # noqa: PLR0917  (one parameter per command-line option)
    urls: Annotated[
        list[str], typer.Argument(help="Stream URLs (http or https); one per format to compare.")
    ],
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            "-H",
            metavar="'NAME: VALUE'",
            help="Extra request header; repeatable.",
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Send Last-Event-ID, as a reconnecting EventSource does."),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS", help="Seconds to listen, in all (headers included).", min=0.1
        ),
    ] = 30.0,
    events: Annotated[
        int, typer.Option(metavar="N", help="Stop after this many events.", min=1)
    ] = 20,
    http2: Annotated[
        bool, typer.Option("--http2", help="Offer HTTP/2 (over TLS; prior knowledge on http).")
    ] = False,
    insecure: Annotated[
        bool, typer.Option("--insecure", "-k", help="Do not verify the TLS certificate.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the measurements as JSON.")] = False,
) -> None:
    """Tell whether a deployed stream arrives live, buffered or cut.

    Exit status 0 live, 1 buffered, 3 cut, 4 not a stream (an error status, a page; the
    highest of several URLs), 2 when it could not probe (bad URL, connection refused, no
    headers in time).
    """
    import json  # noqa: PLC0415

    from rich.console import Console  # noqa: PLC0415

    from ._probe import ProbeOptions, ProbeResult, describe, worst  # noqa: PLC0415
    from ._probe import probe as run_probe  # noqa: PLC0415

    def parse_headers() -> dict[str, str]:
        parsed: dict[str, str] = {}
        for item in header or []:
            name, colon, value = item.partition(":")
            if not colon or not name.strip():
                raise ScaffoldError(f"bad --header {item!r}: write it as 'Name: value'")
            parsed[name.strip()] = value.strip()
        return parsed

    try:
        options = ProbeOptions(
            headers=parse_headers(),
            last_event_id=last_event_id,
            timeout=timeout,
            max_events=events,
            http2=http2,
            verify=not insecure,
        )
        console = Console(stderr=True)

        def run_one(url: str) -> ProbeResult:
            if not console.is_terminal or json_:
                return run_probe(url, options)  # quiet: no progress display off a terminal
            with console.status(f"{url}: connecting") as status:
                return run_probe(url, options, lambda text: status.update(f"{url}: {text}"))

        results = [run_one(url) for url in urls]
    except ScaffoldError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(2) from None
    if json_:
        data = [result.to_json() for result in results]
        typer.echo(json.dumps(data[0] if len(data) == 1 else data, indent=2))
    else:
        typer.echo("\n\n".join("\n".join(describe(result)) for result in results))
    raise typer.Exit(worst([result.verdict for result in results]))


def main() -> None:
    """Entry point of the ``stream-scaffold`` console script."""
    app()
