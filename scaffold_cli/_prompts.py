"""The questions `new` and `add-endpoint` ask, and how their options and ``--data`` merge.

A value given as an option (or, for `new`, as ``--data``) is never asked. On a terminal and
without ``--defaults`` every other one is, with its default in brackets; each answer is checked
as it is given, by the template's own validators (through the `Worker`), and asked again when
refused, so a bad answer costs one question and none of the answers before it. Off a terminal
nothing is asked: missing values take their defaults, and the render checks them all.

An endpoint is asked for with the same questions, in the same order, wherever it is asked: the
first and further endpoints of `new`, and `add-endpoint`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from . import _names
from ._answers import Endpoint
from ._data import parse_bool
from ._errors import ScaffoldError

if TYPE_CHECKING:
    from ._worker import ProjectSpec

Validate = Callable[[dict[str, Any]], dict[str, Any] | None]
"""Checks answers with the template's validators, raising `ScaffoldError` for a refused one;
may return every answer with the template's defaults filled in."""


def interactive(defaults: bool) -> bool:
    """Whether to ask: only on a terminal, and without ``--defaults``."""
    return not defaults and sys.stdin.isatty()


@dataclass(frozen=True)
class EndpointOptions:
    """An endpoint's values as options give them; None is asked, or takes its default."""

    name: str | None = None
    path: str | None = None
    source: str | None = None
    format: str | None = None
    style: str | None = None
    session: bool | None = None

    def any_given(self) -> bool:
        """Whether any value is given."""
        return any(value is not None for value in vars(self).values())


@dataclass(frozen=True)
class ProjectOptions:
    """`new`'s values as options give them; None is taken from ``--data``, asked, or defaulted."""

    name: str | None = None
    package: str | None = None
    description: str | None = None
    server: str | None = None
    proxy: str | None = None
    nginx: bool | None = None
    endpoint: EndpointOptions = EndpointOptions()


class Questions:
    """Asks for what options did not give, and keeps the answers checked so far.

    With ``validate`` None (off a terminal, or ``--defaults``) it asks nothing and checks
    nothing: the render checks every answer.
    """

    def __init__(self, validate: Validate | None) -> None:
        self._validate = validate
        self.answers: dict[str, Any] = {}

    @property
    def interactive(self) -> bool:
        """Whether questions are asked."""
        return self._validate is not None

    def ask(self, label: str, given: str | None, default: str, accept: Callable[[str], str]) -> str:
        """``given``, else the answer typed on a terminal (``default`` on Enter), else
        ``default``; ``accept`` checks and keeps it, raising `ScaffoldError` to refuse it. A
        typed answer that is refused is asked again; a given one is final."""
        if given is not None:
            return accept(given)
        if not self.interactive:
            return accept(default)
        while True:
            typed: str = typer.prompt(label, default=default or None)
            try:
                return accept(typed.strip())
            except ScaffoldError as error:
                typer.echo(f"  {error}", err=True)

    def answer(self, question: str, *, choices: tuple[str, ...] = ()) -> Callable[[str], str]:
        """An ``accept`` for `ask`: the answer to ``question``, one of ``choices`` if any."""

        def accept(value: str) -> str:
            if choices:
                _names.check_choice(question, value, choices)
            self.keep(question, value)
            return value

        return accept

    def keep(self, question: str, value: object) -> None:
        """Check ``value`` as the answer to ``question`` (on a terminal) and keep it."""
        if self._validate is not None:
            self._validate({**self.answers, question: value})
        self.answers[question] = value

    def confirm(self, label: str, given: bool | None, default: bool) -> bool:
        """A yes/no value: ``given``, else asked on a terminal, else ``default``."""
        if given is not None:
            return given
        if self.interactive:
            return typer.confirm(label, default=default)
        return default

    def default(self, question: str) -> str:
        """The template's default for ``question`` given the answers so far ("" if unknown)."""
        recorded = self._validate(self.answers) if self._validate is not None else None
        return str((recorded or {}).get(question, ""))

    def endpoint(self, options: EndpointOptions, prior: list[Endpoint]) -> Endpoint:
        """One endpoint beside the ``prior`` ones: its name, path, source, format, style and
        session, in this order. The formats offered are those of the source chosen."""
        draft = _names.default_endpoint(options.name or "", prior)

        def field(key: str, choices: tuple[str, ...] = ()) -> Callable[[str], str]:
            def accept(value: str) -> str:
                nonlocal draft
                if choices:
                    _names.check_choice(key, value, choices)
                record = {**draft.to_record(), key: value}
                if key == "name":  # the path follows the name until it is asked
                    record["path"] = _names.default_path(value)
                candidate = Endpoint.from_record(record)
                self.keep("endpoints", [*(e.to_record() for e in prior), candidate.to_record()])
                draft = candidate
                return value

            return accept

        first = "" if prior else _names.FIRST_ENDPOINT
        name = self.ask("Endpoint name", options.name, first, field("name"))
        self.ask("URL path", options.path, _names.default_path(name), field("path"))
        self.ask(
            _label("Source", _names.SOURCES),
            options.source,
            draft.source,
            field("source", _names.SOURCES),
        )
        offered = _names.CHANNEL_FORMATS if draft.source == "channel" else _names.FORMATS
        self.ask(
            _label("Format", offered),
            options.format,
            draft.format,
            field("format", _names.FORMATS),
        )
        self.ask(
            _label("Style", _names.STYLES),
            options.style,
            draft.style,
            field("style", _names.STYLES),
        )
        session = self.confirm("Read and write the session?", options.session, draft.session)
        return replace(draft, session=session)

    def more_endpoints(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        """On a terminal, further endpoints for as long as the answer is yes."""
        while self.interactive and typer.confirm("Add another endpoint?", default=False):
            endpoints = [*endpoints, self.endpoint(EndpointOptions(), endpoints)]
        return endpoints


def _label(question: str, choices: tuple[str, ...]) -> str:
    return f"{question} ({'|'.join(choices)})"


def ask_new_project(
    questions: Questions, destination: Path, options: ProjectOptions, data: dict[str, Any]
) -> ProjectSpec:
    """The answers for `new`: each option, else its ``data`` entry, else asked or defaulted.

    ``data`` (from ``--data`` and ``--data-file``) loses every entry used here; the rest are
    answers to the template's other questions. Endpoints come either as ``data``
    (``endpoints=[...]``) or as options and questions, never both.
    """
    from ._worker import ProjectSpec  # noqa: PLC0415

    def given(option: object, key: str) -> str | None:
        value = data.pop(key, None)
        value = option if option is not None else value
        return None if value is None else str(value)

    name = given(options.name, "project_name")
    project_name = questions.ask(
        "Project name",
        name,
        _name_from_directory(destination) if name is None else name,
        questions.answer("project_name"),
    )
    package = given(options.package, "package_name")
    package_name = (
        questions.ask(
            "Package name",
            package,
            questions.default("package_name"),
            questions.answer("package_name"),
        )
        if package is not None or questions.interactive
        else None
    )
    description = questions.ask(
        "Description",
        given(options.description, "description"),
        _names.DESCRIPTION,
        questions.answer("description"),
    )
    server = questions.ask(
        _label("gunicorn worker", _names.SERVERS),
        given(options.server, "server"),
        _names.SERVERS[0],
        questions.answer("server", choices=_names.SERVERS),
    )
    nginx = data.pop("nginx", None)
    nginx = options.nginx if options.nginx is not None else _flag("nginx", nginx)
    proxy = questions.ask(
        _label("Reverse proxy", _names.PROXIES),
        _names.proxy_option(given(options.proxy, "proxy"), nginx),
        _names.PROXIES[0],
        questions.answer("proxy", choices=_names.PROXIES),
    )
    listed = data.pop("endpoints", None)
    if listed is not None and options.endpoint.any_given():
        raise ScaffoldError(
            "give the endpoints either as data (endpoints=...) or with --endpoint "
            "and its options, not both"
        )
    endpoints = (
        endpoints_from_data(listed)
        if listed is not None
        else questions.more_endpoints([questions.endpoint(options.endpoint, [])])
    )
    return ProjectSpec(
        project_name, package_name, description, server, proxy, endpoints, dict(data)
    )


def _flag(key: str, value: object) -> bool | None:
    return None if value is None else parse_bool(key, value)


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


def endpoints_from_data(listed: object) -> list[Endpoint]:
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
