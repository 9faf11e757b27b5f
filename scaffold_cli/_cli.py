"""The ``stream-scaffold`` command line: parse options, call the `Worker`, report.

Nothing here decides how a project is rendered; that is `scaffold_cli._worker`. Every user
error surfaces as a `ScaffoldError` and is printed as one ``Error: ...`` line on stderr with
exit status 1.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from . import __version__
from ._answers import Endpoint
from ._errors import ScaffoldError
from ._help import Group
from ._names import (
    DESCRIPTION,
    FIRST_ENDPOINT,
    FORMATS,
    PROXIES,
    SERVERS,
    SOURCES,
    STYLES,
    ConflictMode,
    Format,
    Proxy,
    Server,
    Source,
    Style,
)
from .check import OutputFormat

if TYPE_CHECKING:
    from ._probe import ProbeOptions, ProbeResult
    from ._worker import Changes, NewResult, Worker

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
    "ticks: events computed in the request; channel: events published elsewhere (sse or "
    f"ndjson). Default: {SOURCES[0]}."
)
_FORMAT_HELP = f"Server-Sent Events, JSON lines or text. Default: {FORMATS[0]}."
_STYLE_HELP = "@stream_with_context on the generator, or wrapping it in the Response."
_SESSION_HELP = "Read and write the session before streaming."
_DEFAULTS_HELP = "Ask nothing; use defaults for missing values."
_PATH_HELP = "URL path. Default: /NAME with '_' as '-'."
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


# ---------------------------------------------------------------------- new
DestinationArgument = Annotated[
    Path, typer.Argument(help="Directory to create (must not exist, or be empty).")
]
NameOption = Annotated[
    str | None,
    typer.Option(
        help="Project (distribution) name. Default: the directory name.",
        rich_help_panel=_PROJECT_PANEL,
    ),
]
PackageOption = Annotated[
    str | None,
    typer.Option(
        help="Import package under src/. Default: the name lowercased, runs of other "
        "characters as '_', leading digits and '_' dropped.",
        rich_help_panel=_PROJECT_PANEL,
    ),
]
DescriptionOption = Annotated[
    str | None,
    typer.Option(
        metavar="TEXT",
        help=f"One-line description. Default: {DESCRIPTION}.",
        rich_help_panel=_PROJECT_PANEL,
    ),
]
ServerOption = Annotated[
    Server | None,
    typer.Option(
        help=f"gunicorn worker class for long-lived streams. Default: {SERVERS[0]}.",
        rich_help_panel=_PROJECT_PANEL,
    ),
]
ProxyOption = Annotated[
    Proxy | None,
    typer.Option(
        help="Reverse proxy config in deploy/ (TLS + HTTP/2, no buffering). "
        f"Default: {PROXIES[0]}.",
        rich_help_panel=_PROJECT_PANEL,
    ),
]
NginxOption = Annotated[
    bool | None,
    typer.Option(
        "--nginx/--no-nginx",
        help="Same as --proxy nginx / --proxy none (kept from earlier versions).",
        hidden=True,
        rich_help_panel=_PROJECT_PANEL,
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        metavar="NAME",
        help=f"Name of the first endpoint (snake_case). Default: {FIRST_ENDPOINT}.",
        rich_help_panel=_ENDPOINT_PANEL,
    ),
]
FirstPathOption = Annotated[
    str | None,
    typer.Option(help=_PATH_HELP, rich_help_panel=_ENDPOINT_PANEL),
]
FirstSourceOption = Annotated[
    Source | None, typer.Option(help=_SOURCE_HELP, rich_help_panel=_ENDPOINT_PANEL)
]
FirstFormatOption = Annotated[
    Format | None,
    typer.Option("--format", help=_FORMAT_HELP, rich_help_panel=_ENDPOINT_PANEL),
]
FirstStyleOption = Annotated[
    Style | None,
    typer.Option(help=f"{_STYLE_HELP} Default: {STYLES[0]}.", rich_help_panel=_ENDPOINT_PANEL),
]
FirstSessionOption = Annotated[
    bool | None,
    typer.Option(
        "--session/--no-session",
        help=f"{_SESSION_HELP} Default: yes.",
        rich_help_panel=_ENDPOINT_PANEL,
    ),
]
DefaultsOption = Annotated[
    bool,
    typer.Option("--defaults", "-y", help=_DEFAULTS_HELP, rich_help_panel=_BEHAVIOUR_PANEL),
]
NewPretendOption = Annotated[
    bool,
    typer.Option(
        "--pretend",
        "-n",
        help="Write nothing; show what would be created.",
        rich_help_panel=_BEHAVIOUR_PANEL,
    ),
]
NoGitOption = Annotated[
    bool,
    typer.Option(
        "--no-git",
        help="Do not create a git repository or commit.",
        rich_help_panel=_BEHAVIOUR_PANEL,
    ),
]
TemplateOption = Annotated[
    str | None,
    typer.Option(
        metavar="SRC",
        help="Template location (git repository, path or URL) instead of the installed one.",
        rich_help_panel=_ADVANCED_PANEL,
    ),
]
VcsRefOption = Annotated[
    str | None,
    typer.Option(
        metavar="REF",
        help="Template version (tag or commit) to render. Default: the installed version, or "
        "the latest tag of --template.",
        rich_help_panel=_ADVANCED_PANEL,
    ),
]
DataOption = Annotated[
    list[str] | None,
    typer.Option(
        "--data",
        "-d",
        metavar="KEY=VALUE",
        help="An answer, as YAML (repeatable), e.g. -d server=gevent or "
        "-d 'endpoints=[{name: a}, {name: b, format: text}]'. Options win over it.",
        rich_help_panel=_ADVANCED_PANEL,
    ),
]
DataFileOption = Annotated[
    Path | None,
    typer.Option(
        "--data-file",
        metavar="FILE",
        help="A YAML file of answers (Copier's --data-file); --data wins over it.",
        dir_okay=False,
        rich_help_panel=_ADVANCED_PANEL,
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


@app.command()
def new(  # noqa: PLR0917  (one parameter per command-line option)
    destination: DestinationArgument,
    name: NameOption = None,
    package: PackageOption = None,
    description: DescriptionOption = None,
    server: ServerOption = None,
    proxy: ProxyOption = None,
    nginx: NginxOption = None,
    endpoint: EndpointOption = None,
    path: FirstPathOption = None,
    source: FirstSourceOption = None,
    format_: FirstFormatOption = None,
    style: FirstStyleOption = None,
    session: FirstSessionOption = None,
    defaults: DefaultsOption = False,
    pretend: NewPretendOption = False,
    no_git: NoGitOption = False,
    template: TemplateOption = None,
    vcs_ref: VcsRefOption = None,
    data: DataOption = None,
    data_file: DataFileOption = None,
    trust: TrustOption = False,
) -> None:
    """Create a new Flask project with streaming endpoints, and commit it to git."""
    from . import _prompts  # noqa: PLC0415
    from ._data import load_data  # noqa: PLC0415
    from ._worker import Worker, check_destination  # noqa: PLC0415

    # Before any question: an answer typed for a destination that cannot be used is wasted.
    _guard(lambda: check_destination(destination))
    given = _guard(lambda: load_data(data_file, data or ()))
    worker = Worker(
        pretend=pretend,
        git_init=not no_git,
        template=template,
        vcs_ref=vcs_ref,
        trust=trust,
        warn=_warn,
    )
    questions = _prompts.Questions(
        worker.check_new_answers if _prompts.interactive(defaults) else None
    )
    options = _prompts.ProjectOptions(
        name,
        package,
        description,
        server,
        proxy,
        nginx,
        _prompts.EndpointOptions(endpoint, path, source, format_, style, session),
    )
    spec = _guard(lambda: _prompts.ask_new_project(questions, destination, options, given))
    result = _guard(lambda: worker.run_new(destination, spec))
    _report_new(destination, result, pretend)


def _report_new(destination: Path, result: NewResult, pretend: bool) -> None:
    """What `new` made (or would make), and the next steps."""
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
    path: Annotated[str | None, typer.Option(help=_PATH_HELP)] = None,
    source: Annotated[Source | None, typer.Option(help=_SOURCE_HELP)] = None,
    format_: Annotated[Format | None, typer.Option("--format", help=_FORMAT_HELP)] = None,
    style: Annotated[
        Style | None,
        typer.Option(help=f"{_STYLE_HELP} Default: the style of the project's last endpoint."),
    ] = None,
    session: Annotated[
        bool | None,
        typer.Option(
            "--session/--no-session",
            help=f"{_SESSION_HELP} Default: yes if one of the project's endpoints does.",
        ),
    ] = None,
    defaults: Annotated[bool, typer.Option("--defaults", "-y", help=_DEFAULTS_HELP)] = False,
    pretend: PretendOption = False,
    conflict: ConflictOption = "inline",
    no_commit: NoCommitOption = False,
    trust: TrustOption = False,
) -> None:
    """Add a streaming endpoint, keeping every edit you made (3-way merge).

    On a terminal it asks for every value not given as an option, as new does.
    """
    from . import _prompts  # noqa: PLC0415
    from ._worker import EndpointRequest  # noqa: PLC0415

    worker = _project_worker(project, pretend, no_commit, conflict, trust)
    request = EndpointRequest(
        name=name, path=path, style=style, format=format_, session=session, source=source
    )
    if _prompts.interactive(defaults):
        # The project is checked before any question: no answer is typed in vain.
        existing = _guard(worker.endpoints_to_extend)
        questions = _prompts.Questions(worker.check_project_answers)
        options = _prompts.EndpointOptions(name, path, source, format_, style, session)
        endpoint = _guard(lambda: questions.endpoint(options, existing))
        request = EndpointRequest(**endpoint.to_record())
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
        bool,
        typer.Option(
            "--json",
            help="Print the endpoints as a JSON list of "
            f"{{{', '.join(field.name for field in fields(Endpoint))}}} records.",
        ),
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
    moved = f"template {result.from_version} -> {result.to_version}"
    if result.changes.conflicts and not pretend:
        _report_notes(result.notes)
        typer.echo(
            f"The update of the {moved} stopped on merge conflicts; nothing was committed. "
            "The merge is in the working tree:"
        )
        _report_changes(result.changes, pretend)  # ends with the conflicts' Error line
    typer.echo(f"{'Would update' if pretend else 'Updated'} {moved}.")
    _report_notes(result.notes)
    _report_changes(result.changes, pretend)
    if not pretend:
        typer.echo("Committed." if result.changes.commit else "Left uncommitted.")


def _report_notes(notes: object) -> None:
    """Print the changelog sections an update brings (a `ReleaseNotes`), as Markdown, newest
    first; nothing for None."""
    from ._versions import ReleaseNotes  # noqa: PLC0415

    if not isinstance(notes, ReleaseNotes) or not notes.sections:
        return
    since = f" since {notes.since}" if notes.since else ""
    typer.echo(f"What changed{since}, from the template's CHANGELOG.md:")
    if notes.partial and notes.since:
        typer.echo(f"(The project is on a commit after {notes.since}: it may have some of these.)")
    for section in notes.sections:
        typer.echo(f"\n## {notes.title(section)}")
        if section.body:
            typer.echo(f"\n{section.body}")
    typer.echo("")


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
        notes = status.notes
        if notes is not None and notes.sections:
            count = len(notes.releases)
            unreleased = len(notes.sections) > count
            typer.echo(
                f"{count} release{'' if count == 1 else 's'} behind"
                + (", and changes not released yet:" if unreleased else ":")
            )
            for section in notes.sections:
                typer.echo(f"  {notes.title(section)}")
            typer.echo("")
            _report_notes(notes)
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
def check(  # noqa: PLR0917  (one parameter per command-line option)
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or directories to check. Default: the current directory."),
    ] = None,
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="text (path:line:col: CODE message), json, github annotations or sarif.",
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
    fix: Annotated[
        bool, typer.Option("--fix", help="Apply the fixes of the findings marked [*].")
    ] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print what --fix would change, and change nothing.")
    ] = False,
) -> None:
    """Find streaming mistakes in a Flask project: its code, gunicorn and proxy configs.

    Exit status 0 when clean, 1 with findings, 2 when the check could not run.
    Silence one line with a comment: [b]# stream-scaffold: ignore[FS101][/b].
    """
    from .check import CheckError, check_paths, fix_paths, render  # noqa: PLC0415

    try:
        chosen = {"select": _codes(select), "ignore": _codes(ignore)}
        if fix or diff:
            fixes = fix_paths(paths or [Path()], write=not diff, **chosen)
        else:
            findings = check_paths(paths or [Path()], **chosen)
    except CheckError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(2) from None
    if diff:
        typer.echo(fixes.diff(), nl=False)
        noun = "finding" if fixes.fixed == 1 else "findings"
        typer.echo(f"Would fix {fixes.fixed} {noun}.", err=True)
        raise typer.Exit(1 if fixes.changed else 0)
    if fix:
        typer.echo(render(fixes.remaining, output, fixed=fixes.fixed), nl=False)
        raise typer.Exit(1 if fixes.remaining else 0)
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

    from ._probe import ProbeOptions, describe, worst  # noqa: PLC0415

    try:
        options = ProbeOptions(
            headers=_probe_headers(header),
            last_event_id=last_event_id,
            timeout=timeout,
            max_events=events,
            http2=http2,
            verify=not insecure,
        )
        results = _run_probes(urls, options, quiet=json_)
    except ScaffoldError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(2) from None
    if json_:
        data = [result.to_json() for result in results]
        typer.echo(json.dumps(data[0] if len(data) == 1 else data, indent=2))
    else:
        typer.echo("\n\n".join("\n".join(describe(result)) for result in results))
    raise typer.Exit(worst([result.verdict for result in results]))


def _probe_headers(items: list[str] | None) -> dict[str, str]:
    """``--header 'Name: value'`` options as headers; a malformed one is a `ScaffoldError`."""
    parsed: dict[str, str] = {}
    for item in items or []:
        name, colon, value = item.partition(":")
        if not colon or not name.strip():
            raise ScaffoldError(f"bad --header {item!r}: write it as 'Name: value'")
        parsed[name.strip()] = value.strip()
    return parsed


def _run_probes(urls: list[str], options: ProbeOptions, *, quiet: bool) -> list[ProbeResult]:
    """Probe each URL in turn, showing its progress on a terminal unless ``quiet``."""
    from rich.console import Console  # noqa: PLC0415

    from ._probe import probe as run_probe  # noqa: PLC0415

    console = Console(stderr=True)

    def run_one(url: str) -> ProbeResult:
        if not console.is_terminal or quiet:
            return run_probe(url, options)  # quiet: no progress display off a terminal
        with console.status(f"{url}: connecting") as status:
            return run_probe(url, options, lambda text: status.update(f"{url}: {text}"))

    return [run_one(url) for url in urls]


def main() -> None:
    """Entry point of the ``stream-scaffold`` console script."""
    app()
