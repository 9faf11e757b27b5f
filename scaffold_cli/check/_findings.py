"""The findings model: every rule with its stable code, and what a check reports.

`RULES` is the one list of rules: the checkers look their rules up here by code, the command
line validates ``--select``/``--ignore`` against it, and the documentation is tested against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Level(StrEnum):
    """How bad a finding is. Every level counts as a finding for the exit status."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Rule:
    """One check: *message* is a format string filled with the details of each finding."""

    code: str
    name: str
    level: Level
    message: str


def _rules(*rules: Rule) -> Mapping[str, Rule]:
    return {rule.code: rule for rule in rules}


RULES: Mapping[str, Rule] = _rules(
    # FS0xx: the files themselves.
    Rule(
        "FS001",
        "unparsable-file",
        Level.ERROR,
        "{error} (this file was left out of the check)",
    ),
    # FS1xx: Flask code.
    Rule(
        "FS101",
        "stream-without-context",
        Level.ERROR,
        "streamed generator uses {name} after the view has returned: "
        "wrap it with stream_with_context",
    ),
    Rule(
        "FS102",
        "stream-context-function-not-called",
        Level.ERROR,
        "stream_with_context wraps the generator function `{name}` itself: "
        "call it in the view, `{name}()`, so the request context is captured",
    ),
    Rule(
        "FS103",
        "stream-context-outside-request",
        Level.ERROR,
        "stream_with_context used {where}, outside any request: "
        "create the stream in the view that returns it",
    ),
    Rule(
        "FS110",
        "session-write-in-stream",
        Level.ERROR,
        "session written inside the streamed generator ({how}): the cookie is already "
        "sent, the write is lost; write the session in the view before returning",
    ),
    Rule(
        "FS111",
        "session-read-only-in-stream",
        Level.WARNING,
        "session read only inside the streamed generator: read it in the view too "
        "(e.g. session.get(...)) so the response carries Vary: Cookie",
    ),
    Rule(
        "FS112",
        "response-changed-in-stream",
        Level.ERROR,
        "`{what}` set inside the streamed generator: status and headers are already sent; "
        "set them in the view before returning",
    ),
    Rule(
        "FS120",
        "hop-by-hop-header-on-stream",
        Level.ERROR,
        "`{header}` header on a streamed response: remove it, the server frames the "
        "stream itself (WSGI forbids hop-by-hop headers, HTTP/2 rejects them)",
    ),
    Rule(
        "FS121",
        "sse-streaming-headers-missing",
        Level.INFO,
        "event stream without {missing}: add it so proxies and caches pass events on live",
    ),
    Rule(
        "FS130",
        "teardown-closes-stream-resource",
        Level.ERROR,
        "streamed generator uses `{name}`, which a teardown function closes: Flask 3.1.2+ "
        "runs teardown when the view returns; open and close it inside the generator",
    ),
    Rule(
        "FS140",
        "compress-streams",
        Level.ERROR,
        "Flask-Compress compresses the app's {mimetype} streams (COMPRESS_STREAMS defaults "
        "to True and COMPRESS_MIMETYPES has the type): set COMPRESS_STREAMS = False",
    ),
    Rule(
        "FS141",
        "compression-middleware",
        Level.ERROR,
        "`{name}` compresses the whole app, streams included, and holds events back: "
        "exclude streamed responses or compress in the proxy",
    ),
    Rule(
        "FS150",
        "redis-socket-timeout",
        Level.ERROR,
        "blocking `{command}` waits {wait} but the client's socket_timeout is "
        "{timeout}: set socket_timeout above the blocking time (or None)",
    ),
    Rule(
        "FS160",
        "stream-waits-without-heartbeat",
        Level.WARNING,
        "streamed generator waits on `{call}` with no timeout, writing nothing meanwhile: a "
        "client that left is not noticed and proxies cut the silent stream; wait with a "
        "timeout and send a heartbeat comment when it runs out",
    ),
    # FS2xx: gunicorn configuration.
    Rule(
        "FS201",
        "gunicorn-sync-worker",
        Level.ERROR,
        "gunicorn {how} the sync worker: one stream per worker, and its timeout kills "
        "long streams; use worker_class = 'gthread' (with threads) or 'gevent'",
    ),
    Rule(
        "FS202",
        "gunicorn-few-threads",
        Level.WARNING,
        "gthread with {threads} thread(s) per worker holds only that many open streams: "
        "set threads to at least {minimum}",
    ),
    Rule(
        "FS203",
        "gunicorn-timeout",
        Level.WARNING,
        "timeout = {value} does not limit streams on {worker} workers (it watches the "
        "worker process): keep the default 30 so hung workers are replaced",
    ),
    # FS3xx: proxy configuration.
    Rule(
        "FS301",
        "nginx-buffers-stream",
        Level.ERROR,
        "nginx buffers the stream {route}: proxy_buffering is {how} and the app sends no "
        "X-Accel-Buffering: no; set proxy_buffering off in this location",
    ),
    Rule(
        "FS302",
        "nginx-ignores-accel-buffering",
        Level.ERROR,
        "proxy_ignore_headers X-Accel-Buffering with buffering on holds the stream {route} "
        "back: set proxy_buffering off in this location",
    ),
    Rule(
        "FS303",
        "nginx-read-timeout",
        Level.ERROR,
        "proxy_read_timeout {timeout:g} s is not above the app's heartbeat of {heartbeat:g} s: "
        "nginx cuts quiet streams at {route}; raise it above the heartbeat",
    ),
    Rule(
        "FS304",
        "nginx-caches-stream",
        Level.ERROR,
        "proxy_cache {zone} on the stream {route}: a cache holds the stream back and "
        "replays it; set proxy_cache off in this location",
    ),
    Rule(
        "FS310",
        "caddy-encodes-stream",
        Level.ERROR,
        "Caddy's encode compresses the {mimetype} stream {route} and holds it back until it "
        "ends (caddy #6293): keep the stream's type out of encode's match",
    ),
    Rule(
        "FS311",
        "caddy-read-timeout",
        Level.ERROR,
        "read_timeout {timeout:g} s is not above the app's heartbeat of {heartbeat:g} s: "
        "Caddy cuts quiet streams at {route}; raise it above the heartbeat",
    ),
    Rule(
        "FS312",
        "caddy-write-timeout",
        Level.ERROR,
        "the write timeout of {timeout:g} s ends every response that long after it starts, "
        "the stream {route} included: remove it (idle and read_header timeouts do not)",
    ),
    Rule(
        "FS320",
        "apache-flushpackets",
        Level.INFO,
        "ProxyPass for the stream {route} without flushpackets=on: Apache passes what the "
        "app writes on only when the app pauses; add flushpackets=on",
    ),
    Rule(
        "FS321",
        "apache-proxy-timeout",
        Level.ERROR,
        "{setting} {timeout:g} s is not above the app's heartbeat of {heartbeat:g} s: "
        "Apache cuts quiet streams at {route}; raise it above the heartbeat",
    ),
    Rule(
        "FS330",
        "http2-few-streams",
        Level.WARNING,
        "{setting} {value} lets an HTTP/2 connection carry only {value} requests at once, "
        "and a browser shares it among all its tabs of the site while each open stream "
        "holds one: set it to at least {minimum}",
    ),
)

_SUPPRESSION = re.compile(r"#\s*stream-scaffold:\s*ignore\[([A-Z0-9,\s]+)\]")


@dataclass(frozen=True, order=True)
class Edit:
    """Replace the text of *path* from *start* to *end* (line from 1, column from 0, in
    characters) with *text*; *start* == *end* inserts."""

    path: Path
    start: tuple[int, int]
    end: tuple[int, int]
    text: str


@dataclass(frozen=True, order=True)
class Finding:
    """One problem at one place: ``path:line:column: CODE message``, and the edits that fix
    it when the fix is mechanical (``check --fix``)."""

    path: Path
    line: int
    column: int
    code: str
    message: str
    fix: tuple[Edit, ...] = field(default=(), compare=False)

    @property
    def rule(self) -> Rule:
        return RULES[self.code]


def finding(code: str, path: Path, line: int, column: int, **details: object) -> Finding:
    """A finding of rule *code* at *path*:*line*:*column*, its message filled with *details*."""
    return Finding(path, line, column, code, RULES[code].message.format(**details))


def suppressed_codes(line: str) -> frozenset[str]:
    """The codes a ``# stream-scaffold: ignore[CODE, ...]`` comment on *line* suppresses."""
    match = _SUPPRESSION.search(line)
    if match is None:
        return frozenset()
    return frozenset(code.strip() for code in match.group(1).split(",") if code.strip())


def check_selector(code: str) -> str:
    """Validate a ``--select``/``--ignore`` value: a rule code or a prefix of some (``FS3``)."""
    normal = code.strip().upper()
    if not normal or not any(known.startswith(normal) for known in RULES):
        known = ", ".join(RULES)
        raise ValueError(f"unknown rule code {code!r}: use one of {known} or a prefix like FS1")
    return normal


def selected(code: str, select: Iterable[str], ignore: Iterable[str]) -> bool:
    """Whether *code* is reported under ``--select`` (default: all) and ``--ignore``."""
    chosen = list(select)
    if chosen and not any(code.startswith(prefix) for prefix in chosen):
        return False
    return not any(code.startswith(prefix) for prefix in ignore)
