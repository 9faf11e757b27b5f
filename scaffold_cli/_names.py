"""The naming rules, as ``copier.yml`` states them, and the few defaults Copier does not know.

``copier.yml``'s validators are the one statement of what a project name, package name,
description or endpoint may be. Plain ``copier copy`` applies them, and the command line asks
Copier to apply them too (`check_answers`, and every render), so both refuse the same inputs
with the same message. What lives here is only what Copier has no question for: the choices as
types for the command line's options, and the URL path a new endpoint gets when none is given.
Defaults that ``copier.yml`` derives (the package name) come from Copier too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from ._answers import Endpoint
from ._errors import ScaffoldError

# The choices copier.yml offers; tests/test_copier_config.py keeps them in step with it.
Style = Literal["decorator", "wrapper"]
Format = Literal["sse", "ndjson", "text"]
ChannelFormat = Literal["sse", "ndjson"]
Source = Literal["ticks", "channel"]
Server = Literal["gthread", "gevent"]
Proxy = Literal["nginx", "caddy", "apache", "none"]
ConflictMode = Literal["inline", "rej"]

STYLES: tuple[Style, ...] = get_args(Style)
FORMATS: tuple[Format, ...] = get_args(Format)
CHANNEL_FORMATS: tuple[ChannelFormat, ...] = get_args(ChannelFormat)
"""The formats a channel streams, offered when a channel endpoint's format is asked; the
template's validator is what refuses any other."""
SOURCES: tuple[Source, ...] = get_args(Source)
SERVERS: tuple[Server, ...] = get_args(Server)
PROXIES: tuple[Proxy, ...] = get_args(Proxy)


FIRST_ENDPOINT = "events"
"""The name of a new project's endpoint when none is given."""

DESCRIPTION = "Streaming endpoints done right with Flask"
"""copier.yml's default description, offered by the prompt and named in the help."""


def default_path(endpoint_name: str) -> str:
    """The URL path an endpoint gets when none is given: ``/NAME`` with ``_`` as ``-``."""
    return "/" + endpoint_name.replace("_", "-")


def default_endpoint(name: str, prior: Sequence[Endpoint]) -> Endpoint:
    """The endpoint ``name`` becomes, beside the ``prior`` ones, where nothing else is given.

    Its path comes from its name; it streams ticks as sse, in the style of the endpoint before
    it (the style and session use of a project's endpoints read best alike), and uses the
    session if one of them does, or, as the first one, as the template's example does.
    """
    return Endpoint(
        name=name,
        path=default_path(name),
        style=prior[-1].style if prior else STYLES[0],
        format=FORMATS[0],
        session=any(endpoint.session for endpoint in prior) if prior else True,
        source=SOURCES[0],
    )


def check_choice(what: str, value: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise `ScaffoldError`."""
    allowed = tuple(choices)
    if value not in allowed:
        raise ScaffoldError(f"unknown {what} {value!r}: choose one of {', '.join(allowed)}")
    return value


def proxy_option(proxy: str | None, nginx: bool | None) -> str | None:
    """The proxy asked for by ``--proxy``, or by the older ``--nginx/--no-nginx`` alias.

    Returns None when neither was given; refuses the two when they disagree.
    """
    if nginx is None:
        return proxy
    alias = "nginx" if nginx else "none"
    if proxy is not None and proxy != alias:
        flag = "--nginx" if nginx else "--no-nginx"
        raise ScaffoldError(f"{flag} means --proxy {alias}, which contradicts --proxy {proxy}")
    return alias


def check_answers(
    src_path: str,
    vcs_ref: str | None,
    data: Mapping[str, Any],
    *,
    unsafe: bool,
    warn: Callable[[str], None],
) -> dict[str, Any] | None:
    """Ask the template's own validators about ``data``; return the answers with defaults.

    Copier checks the answers exactly as ``copier copy --data`` does, in the order of
    ``copier.yml``; questions missing from ``data`` take their defaults. Only a verdict on a
    question in ``data`` counts: a default that fails (say, the package name derived from a
    project name that is a module's name) is for its own question to settle, when it is asked;
    the answers are then unknown (None). Raises `ScaffoldError` with the validator's message.
    """
    from . import _copier  # noqa: PLC0415  (imports Copier)

    with tempfile.TemporaryDirectory(prefix="stream-scaffold-") as scratch:
        destination = Path(scratch) / "project"
        try:
            return _copier.recorded_answers(
                src_path, destination, data, vcs_ref, warn, unsafe=unsafe
            )
        except _copier.AnswerError as error:
            if error.question in data:
                raise
            return None
