"""FS3xx: the proxy in front of the app's streaming routes: nginx, Caddy, Apache httpd.

Each streaming route found in the code is matched to what the proxy would choose for it: the
nginx location in every ``server`` block (settings inherited from ``server`` and ``http`` as
nginx does), the Caddy site's ``handle`` and ``reverse_proxy``, the Apache ``ProxyPass`` of
each virtual host; the settings in force there are checked against what the app sends.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from . import _apache as apache
from . import _caddy as caddy
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
    """A route whose view streams, whether the app sends ``X-Accel-Buffering: no``, and
    the types of its streams that are known."""

    rule: str
    no_buffering_header: bool
    mimetypes: tuple[str, ...] = ()

    @property
    def sample(self) -> str:
        """A request path this rule matches: converters replaced by sample values."""
        return _CONVERTER.sub(lambda m: _SAMPLE.get(m.group(1) or "", "x"), self.rule)


def stream_routes(project: Project) -> list[StreamRoute]:
    """The streaming routes of *project*, each once."""
    found: dict[str, bool] = {}
    types: dict[str, set[str]] = {}
    for site in project.sites:
        if site.stream is None:
            continue
        header = site.header("x-accel-buffering")
        sends = header is not None and (header.value is None or header.value.lower() == "no")
        for view in site.views:
            for route in project.routes.get(view, []):
                found[route.rule] = found.get(route.rule, False) or sends
                if site.mimetype is not None:
                    types.setdefault(route.rule, set()).add(site.mimetype)
    return [
        StreamRoute(rule, sends, tuple(sorted(types.get(rule, ()))))
        for rule, sends in found.items()
    ]


def check_nginx(
    directives: list[Directive], routes: list[StreamRoute], heartbeat: float | None
) -> Iterator[Finding]:
    """Every FS3xx finding for one nginx configuration (its includes spliced in)."""
    yield from _nginx_http2(directives)
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


# ------------------------------------------------------------------ HTTP/2
# Fewer concurrent HTTP/2 streams per connection than this, and a user with a few tabs open
# on the site runs out: every tab shares one connection, each open stream holds one.
MIN_HTTP2_STREAMS = 32


def _nginx_http2(directives: list[Directive]) -> Iterator[Finding]:
    """FS330 for ``http2_max_concurrent_streams`` in a configuration that speaks HTTP/2."""
    every = list(_walk(directives))
    speaks = any(
        (d.name == "listen" and "http2" in d.args) or (d.name == "http2" and d.args[:1] == ["on"])
        for d in every
    )
    caps = [d for d in every if d.name == "http2_max_concurrent_streams"]
    yield from _few_streams(caps if speaks else [])


def _few_streams(caps: list[Directive] | list[apache.Directive]) -> Iterator[Finding]:
    """FS330 for each of these HTTP/2 stream caps (nginx's or Apache's) set below the least."""
    for directive in caps:
        value = directive.args[0] if directive.args else ""
        if value.isdigit() and int(value) < MIN_HTTP2_STREAMS:
            yield finding(
                "FS330",
                directive.path,
                directive.line,
                directive.column,
                setting=directive.name,
                value=int(value),
                minimum=MIN_HTTP2_STREAMS,
            )


def _walk(directives: list[Directive]) -> Iterator[Directive]:
    for directive in directives:
        yield directive
        if directive.block is not None:
            yield from _walk(directive.block)


# ------------------------------------------------------------------ Caddy
_CADDY_NAME = re.compile(r"^(Caddyfile(\..*)?|.*\.caddyfile|.*\.Caddyfile)$")
# Caddy's default encode match (2.7 and later): the types it compresses unless told.
CADDY_ENCODED_TYPES = (
    "application/atom+xml*",
    "application/eot*",
    "application/font*",
    "application/geo+json*",
    "application/graphql+json*",
    "application/javascript*",
    "application/json*",
    "application/ld+json*",
    "application/manifest+json*",
    "application/opentype*",
    "application/otf*",
    "application/rss+xml*",
    "application/truetype*",
    "application/ttf*",
    "application/vnd.api+json*",
    "application/vnd.ms-fontobject*",
    "application/wasm*",
    "application/x-httpd-cgi*",
    "application/x-javascript*",
    "application/x-opentype*",
    "application/x-otf*",
    "application/x-perl*",
    "application/x-protobuf*",
    "application/x-ttf*",
    "application/xhtml+xml*",
    "application/xml*",
    "font/ttf*",
    "font/otf*",
    "image/svg+xml*",
    "image/vnd.microsoft.icon*",
    "image/x-icon*",
    "multipart/bag*",
    "multipart/mixed*",
    "text/*",
)


def is_caddy_name(path: Path) -> bool:
    """``Caddyfile``, ``Caddyfile.prod``, ``site.caddyfile`` and the like."""
    return _CADDY_NAME.match(path.name) is not None


def check_caddy(
    nodes: list[caddy.Node], routes: list[StreamRoute], heartbeat: float | None
) -> Iterator[Finding]:
    """Every FS31x finding for one Caddyfile (its imports spliced in)."""
    write = caddy.global_option(nodes, "servers", "timeouts", "write")
    for site in caddy.sites(nodes):
        for route in routes:
            served = caddy.serve(site, route.sample)
            if served is None:
                continue
            label = f"{route.rule} ({site.name})"
            for node in served.directives:
                if node.name == "encode":
                    encoded = _encoded(node, route.mimetypes)
                    if encoded is not None:
                        yield _caddy_at("FS310", node, mimetype=encoded, route=label)
            yield from _caddy_timeouts(served.proxy, write, label, heartbeat)


def _caddy_at(code: str, node: caddy.Node, **details: object) -> Finding:
    return finding(code, node.path, node.line, node.column, **details)


def _encoded(encode: caddy.Node, mimetypes: tuple[str, ...]) -> str | None:
    """The first of *mimetypes* that *encode* compresses, if its ``match`` tells."""
    patterns: list[str] = list(CADDY_ENCODED_TYPES)
    match = encode.child("match")
    if match is not None:
        conditions = (
            match.block
            or [caddy.Node(match.args[0], match.args[1:], match.path, match.line, match.column)]
            if match.args or match.block
            else []
        )
        patterns = []
        for condition in conditions:
            if condition.name != "header" or condition.args[:1] != ["Content-Type"]:
                return None  # matched on something else: not known here
            patterns += condition.args[1:]
    for mimetype in mimetypes:
        if any(fnmatch.fnmatchcase(mimetype, pattern) for pattern in patterns):
            return mimetype
    return None


def _caddy_timeouts(
    proxy: caddy.Node, write: caddy.Node | None, label: str, heartbeat: float | None
) -> Iterator[Finding]:
    transport = proxy.child("transport")
    read = transport.child("read_timeout") if transport is not None else None
    if read is not None and read.args and heartbeat is not None:
        timeout = caddy.seconds(read.args[0])
        if timeout is not None and 0 < timeout <= heartbeat:
            yield _caddy_at("FS311", read, timeout=timeout, heartbeat=heartbeat, route=label)
    if write is not None and write.args:
        timeout = caddy.seconds(write.args[0])
        if timeout is not None and timeout > 0:
            yield _caddy_at("FS312", write, timeout=timeout, route=label)


# ------------------------------------------------------------------ Apache httpd
_APACHE_SYNTAX = re.compile(
    r"(?m)^\s*(<VirtualHost\b|<Location(Match)?\b|ProxyPass(Match)?\s|LoadModule\s|"
    r"ProxyTimeout\s|H2MaxSessionStreams\s)"
)
APACHE_DEFAULT_TIMEOUT = 60.0


def looks_like_apache(text: str) -> bool:
    """Whether *text* has Apache httpd's own syntax (``<VirtualHost``, ``ProxyPass``...)."""
    return _APACHE_SYNTAX.search(text) is not None


def is_main_apache(text: str) -> bool:
    """Whether *text* is a server's main configuration (it loads modules or listens)."""
    return re.search(r"(?m)^\s*(LoadModule|Listen|ServerRoot)\s", text) is not None


def check_apache(
    directives: list[apache.Directive], routes: list[StreamRoute], heartbeat: float | None
) -> Iterator[Finding]:
    """Every FS32x finding (and FS330) for one httpd configuration (includes spliced in)."""
    yield from _apache_http2(directives)
    for levels in apache.servers(directives):
        for route in routes:
            served = apache.proxied(levels, route.sample)
            if served is None:
                continue
            label = f"{route.rule} ({' '.join(served.proxy.args[:1]) or served.proxy.name})"
            if served.parameters.get("flushpackets", "off").lower() != "on":
                proxy = served.proxy
                found = finding("FS320", proxy.path, proxy.line, proxy.column, route=label)
                edit_at = (proxy.line, proxy.end_column)
                fix = (Edit(proxy.path, edit_at, edit_at, " flushpackets=on"),)
                yield replace(found, fix=fix if "flushpackets" not in served.parameters else ())
            if heartbeat is not None:
                yield from _apache_timeout(served, label, heartbeat)


def _apache_timeout(served: apache.Proxied, label: str, heartbeat: float) -> Iterator[Finding]:
    """ProxyPass's timeout=, else ProxyTimeout, else Timeout (60 s by default)."""
    where: apache.Directive | None = served.proxy
    setting = "ProxyPass timeout"
    value = served.parameters.get("timeout")
    if value is None:
        for name in ("ProxyTimeout", "Timeout"):
            where = served.setting(name)
            if where is not None:
                if where.opaque or not where.args:
                    return
                setting, value = where.name, where.args[0]
                break
    timeout = APACHE_DEFAULT_TIMEOUT if value is None else apache.seconds(value)
    if timeout is not None and timeout <= heartbeat:
        at = where or served.proxy
        if value is None:
            setting = "Timeout (default)"
        yield finding(
            "FS321",
            at.path,
            at.line,
            at.column,
            setting=setting,
            timeout=timeout,
            heartbeat=heartbeat,
            route=label,
        )


def _apache_http2(directives: list[apache.Directive]) -> Iterator[Finding]:
    """FS330 for ``H2MaxSessionStreams`` in a configuration that speaks HTTP/2."""
    every = list(_apache_walk(directives))
    speaks = any(d.key == "protocols" and "h2" in d.args for d in every)
    yield from _few_streams([d for d in every if d.key == "h2maxsessionstreams"] if speaks else [])


def _apache_walk(directives: list[apache.Directive]) -> Iterator[apache.Directive]:
    for directive in directives:
        yield directive
        if directive.block is not None:
            yield from _apache_walk(directive.block)
