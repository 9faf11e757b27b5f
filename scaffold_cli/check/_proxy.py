"""FS3xx: nginx configuration in front of the app's streaming routes.

Each streaming route found in the code is matched to the location nginx would choose for
it, in every ``server`` block; the settings in force there (inherited from ``server`` and
``http`` as nginx does) are checked against what the app sends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from ._findings import Edit, Finding, finding
from ._fixes import indentation, insert_line, source
from ._model import Project
from ._nginx import Directive, Location, match_location, rendered_name, seconds, servers

NGINX_DEFAULT_READ_TIMEOUT = 60.0
_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>")
_SAMPLE = {
    "int": "1",
    "float": "1.0",
    "path": "x/y",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


_NGINX_NAME = re.compile(r"^(.*\.(conf|nginx)|nginx(\.conf(\.\w+)?)?|.*\.template)$")
_NGINX_SYNTAX = re.compile(
    r"(?m)^\s*(location\s[^\n]*\{|proxy_pass\s+\S+;|server\s*\{|upstream\s+\S+\s*\{|http\s*\{)"
)


def is_nginx_name(path: Path) -> bool:
    """``*.conf``, ``*.nginx``, ``nginx``, ``*.template`` (``default.conf.template``,
    rendered by envsubst at deploy time) and the like."""
    return _NGINX_NAME.match(path.name) is not None


_MAIN_BLOCK = re.compile(r"(?m)^\s*(http|events)\s*\{")


def is_main_nginx(path: Path, text: str) -> bool:
    """Whether *path* is nginx's main configuration file: ``nginx.conf`` (or its template),
    or a file with the top-level ``http {}`` or ``events {}`` block only that file has."""
    return rendered_name(path) == "nginx.conf" or _MAIN_BLOCK.search(text) is not None


def looks_like_nginx(text: str) -> bool:
    """Whether *text* has nginx's own syntax: ``location ... {``, ``proxy_pass ...;``,
    ``server {``, ``upstream name {`` or ``http {`` (not an INI or Apache file)."""
    return _NGINX_SYNTAX.search(text) is not None


@dataclass(frozen=True)
class StreamRoute:
    """A route whose view streams, and whether the app sends ``X-Accel-Buffering: no``."""

    rule: str
    no_buffering_header: bool

    @property
    def sample(self) -> str:
        """A request path this rule matches: converters replaced by sample values."""
        return _CONVERTER.sub(lambda m: _SAMPLE.get(m.group(1) or "", "x"), self.rule)


def stream_routes(project: Project) -> list[StreamRoute]:
    """The streaming routes of *project*, each once."""
    found: dict[str, bool] = {}
    for site in project.sites:
        if site.stream is None:
            continue
        header = site.header("x-accel-buffering")
        sends = header is not None and (header.value is None or header.value.lower() == "no")
        for view in site.views:
            for route in project.routes.get(view, []):
                found[route.rule] = found.get(route.rule, False) or sends
    return [StreamRoute(rule, sends) for rule, sends in found.items()]


def check_nginx(
    directives: list[Directive], routes: list[StreamRoute], heartbeat: float | None
) -> Iterator[Finding]:
    """Every FS3xx finding for one nginx configuration (its includes spliced in)."""
    for chain in servers(directives):
        for route in routes:
            location = match_location(chain, route.sample)
            if location is None or location.own("proxy_pass") is None:
                continue
            yield from _location_findings(location, route, heartbeat)


def _at(code: str, location: Location, directive: Directive | None, **details: object) -> Finding:
    where = directive or location.directive
    return finding(code, where.path, where.line, where.column, **details)


def switch_off(location: Location, name: str) -> tuple[Edit, ...]:
    """``name off;`` in *location*: its own ``name ...;`` rewritten, else a line after its
    ``proxy_pass`` (same indentation; on the same line for a one-line location)."""
    own = location.own(name)
    if own is not None:
        if own.path != location.directive.path:
            return ()  # set in an included file that other locations share
        begin, finish = (own.line, own.column - 1), (own.end[0], own.end[1])
        return (Edit(own.path, begin, finish, f"{name} off;"),)
    anchor = location.own("proxy_pass")
    if anchor is None or anchor.path != location.directive.path:
        return ()  # proxy_pass comes from an included file shared with other locations
    lines = source(anchor.path)
    line, column = anchor.end  # the ';', counted from 1: the text after it starts there
    rest = lines[line - 1][column:] if 0 < line <= len(lines) else ""
    if not rest.strip() or rest.strip().startswith("#"):
        return (
            insert_line(anchor.path, line + 1, f"{indentation(lines, anchor.line)}{name} off;\n"),
        )
    return (Edit(anchor.path, (line, column), (line, column), f" {name} off;"),)


def _location_findings(
    location: Location, route: StreamRoute, heartbeat: float | None
) -> Iterator[Finding]:
    label = f"{route.rule} ({location.label})"
    buffering = location.setting("proxy_buffering")
    known = buffering is None or not (buffering.opaque or buffering.unknown_value)
    if known and (buffering is None or buffering.args[:1] != ["off"]):
        ignored = location.setting("proxy_ignore_headers")
        if ignored is not None and ignored.opaque:
            pass  # whether the app's header is ignored is not known
        elif ignored is not None and any(a.lower() == "x-accel-buffering" for a in ignored.args):
            found = _at("FS302", location, ignored, route=label)
            yield replace(found, fix=switch_off(location, "proxy_buffering"))
        elif not route.no_buffering_header:
            how = "on" if buffering is not None else "on by default"
            found = _at("FS301", location, buffering, route=label, how=how)
            yield replace(found, fix=switch_off(location, "proxy_buffering"))
    timeout_directive = location.setting("proxy_read_timeout")
    timeout: float | None = NGINX_DEFAULT_READ_TIMEOUT
    if timeout_directive is not None:
        timeout = (
            None
            if timeout_directive.opaque or not timeout_directive.args
            else (seconds(timeout_directive.args[0]))
        )
    if heartbeat is not None and timeout is not None and timeout <= heartbeat:
        yield _at(
            "FS303", location, timeout_directive, timeout=timeout, heartbeat=heartbeat, route=label
        )
    cache = location.setting("proxy_cache")
    if (
        cache is not None
        and not (cache.opaque or cache.unknown_value)
        and cache.args[:1] != ["off"]
    ):
        found = _at("FS304", location, cache, zone=" ".join(cache.args), route=label)
        yield replace(found, fix=switch_off(location, "proxy_cache"))
