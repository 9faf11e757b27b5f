"""A small Apache httpd configuration reader: directives, sections, includes, and the
``ProxyPass`` that serves a path with the settings in force there.

It reads what httpd reads: one directive a line (a trailing ``\\`` continues it), ``#``
comment lines, ``"quoted"`` arguments, ``<Section args>`` ... ``</Section>`` containers.
``Include``/``IncludeOptional`` are read relative to the server root (the directory of the
main configuration, the file with ``LoadModule``/``Listen``) or, without one, the including
file's directory; one that cannot be read is *opaque*. ``<IfModule>`` and ``<IfDefine>``
contents count as written: they are what the author means to run.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ._sources import ConfigError, ConfigNode, read_config

_MAX_INCLUDE_DEPTH = 10
_SECTION = re.compile(r"^<\s*(/?)\s*([\w.]+)\s*(.*?)\s*>$")
_CONDITIONAL = frozenset({"ifmodule", "ifdefine", "ifversion", "ifdirective", "iffile"})


@dataclass
class Directive(ConfigNode):
    """A directive or a section (with a *block*); *name* as written, compared lowercased."""

    block: list[Directive] | None = None
    end_column: int = 0  # where the directive's line ends (for a fix that appends to it)

    @property
    def key(self) -> str:
        return self.name.lower()


def _logical_lines(text: str) -> Iterator[tuple[int, int, str, int]]:
    """(line, column, text, end column of the last physical line) of each directive."""
    pending: list[str] = []
    start = 1
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        stripped = raw.rstrip()
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        joined = " ".join(pending)
        pending = []
        content = joined.strip()
        if content and not content.startswith("#"):
            column = len(joined) - len(joined.lstrip()) + 1
            yield start, column, content, len(stripped)


def parse(path: Path, server_root: Path | None = None, *, depth: int = 0) -> list[Directive]:
    """The directives of the httpd file *path*, includes spliced in where they appear."""
    text = read_config(path)
    root: list[Directive] = []
    stack: list[tuple[str, list[Directive], int]] = [("", root, 0)]
    for line, column, content, end_column in _logical_lines(text):
        section = _SECTION.match(content)
        if section is not None:
            closing, name, rest = section.groups()
            if closing:
                if stack[-1][0].lower() != name.lower():
                    raise ConfigError(path, line, f"</{name}> closes nothing open", column)
                stack.pop()
                continue
            directive = Directive(name, _words(rest, path, line), path, line, column, [])
            stack[-1][1].append(directive)
            assert directive.block is not None
            stack.append((name, directive.block, line))
            continue
        words = _words(content, path, line)
        directive = Directive(words[0], words[1:], path, line, column, end_column=end_column)
        stack[-1][1].append(directive)
        if directive.key in ("include", "includeoptional") and directive.args:
            stack[-1][1] += _include(directive, server_root, depth)
    if len(stack) > 1:
        name, _, line = stack[-1]
        raise ConfigError(path, line, f"<{name}> is never closed")
    return root


def _words(text: str, path: Path, line: int) -> list[str]:
    try:
        return shlex.split(text, posix=True)
    except ValueError as error:
        raise ConfigError(path, line, f"cannot read the arguments ({error})") from error


def _include(directive: Directive, server_root: Path | None, depth: int) -> list[Directive]:
    pattern = directive.args[0]
    if depth >= _MAX_INCLUDE_DEPTH or "${" in pattern:
        directive.opaque = True
        return []
    base = server_root or directive.path.parent
    relative = pattern
    if pattern.startswith("/"):
        for prefix in ("/etc/apache2/", "/etc/httpd/", "/usr/local/apache2/"):
            if pattern.startswith(prefix) and server_root is not None:
                relative = pattern[len(prefix) :]
                break
        else:
            directive.opaque = True
            return []
    matches = sorted(p for p in base.glob(relative) if p.is_file())
    if not matches:
        directive.opaque = not any(c in relative for c in "*?[")
        return []
    spliced: list[Directive] = []
    for match in matches:
        directive.included.append(match)
        spliced += parse(match, server_root, depth=depth + 1)
    return spliced


def included_files(directives: list[Directive]) -> Iterator[Path]:
    for directive in directives:
        yield from directive.included
        if directive.block is not None:
            yield from included_files(directive.block)


def flatten(directives: list[Directive]) -> Iterator[Directive]:
    """*directives* with the contents of conditional sections (``<IfModule>``...) in place."""
    for directive in directives:
        if directive.block is not None and directive.key in _CONDITIONAL:
            yield from flatten(directive.block)
        else:
            yield directive


def servers(directives: list[Directive]) -> Iterator[list[list[Directive]]]:
    """Each server's levels, innermost first: a ``<VirtualHost>`` and the main server; the
    main server alone when there is no virtual host (or proxying happens there)."""
    top = list(flatten(directives))
    hosts = [d for d in top if d.key == "virtualhost" and d.block is not None]
    for host in hosts:
        yield [list(flatten(host.block or [])), top]
    yield [top]


@dataclass(frozen=True)
class Proxied:
    """The ``ProxyPass`` that serves a path, and the settings in force for it, innermost
    level first (matching ``<Location>`` sections, the virtual host, the main server)."""

    proxy: Directive
    parameters: dict[str, str]
    levels: list[list[Directive]]

    def setting(self, name: str) -> Directive | None:
        """The directive *name* in force (an opaque include met first: returned instead)."""
        for level in self.levels:
            found = [d for d in level if d.key == name.lower()]
            if found:
                return found[-1]
            opaque = next((d for d in level if d.opaque), None)
            if opaque is not None:
                return opaque
        return None


def proxied(levels: list[list[Directive]], uri: str) -> Proxied | None:
    """The ``ProxyPass`` that serves *uri* on the server of *levels*: one in the last
    matching ``<Location>``, else the first ``ProxyPass`` or ``ProxyPassMatch`` of the
    server's own level that matches. None when none does (or ``!`` excludes the path), or
    when that cannot be told (an include that cannot be read, a ``${VARIABLE}``)."""
    own = levels[0]
    if any(d.opaque for d in own):
        return None
    locations = [
        d
        for d in own
        if d.key in ("location", "locationmatch")
        and d.block is not None
        and _location_matches(d, uri)
    ]
    inner = [list(flatten(location.block or [])) for location in reversed(locations)]
    candidates = [d for level in inner for d in level if d.key == "proxypass" and d.args]
    if candidates:
        chosen, parameters = candidates[0], candidates[0].args[1:]
    else:
        found = next((d for d in own if _serves(d, uri) is not False), None)
        if found is None or _serves(found, uri) is None:
            return None
        chosen, parameters = found, found.args[2:]
    if "!" in chosen.args[:2]:
        return None
    return Proxied(chosen, _parameters(parameters), [*inner, *levels])


def _serves(directive: Directive, uri: str) -> bool | None:
    """Whether a server-level ``ProxyPass``/``ProxyPassMatch`` matches *uri* (None: it may,
    that cannot be told); False for any other directive."""
    if directive.key not in ("proxypass", "proxypassmatch") or len(directive.args) < 2:
        return False
    pattern = directive.args[0]
    if "${" in pattern:
        return None
    if directive.key == "proxypass":
        return uri.startswith(pattern)
    try:
        return re.search(pattern, uri) is not None
    except re.error:
        return None


def _location_matches(location: Directive, uri: str) -> bool:
    if not location.args:
        return False
    if location.key == "locationmatch" or location.args[0] == "~":
        pattern = location.args[-1]
        try:
            return re.search(pattern, uri) is not None
        except re.error:
            return False
    return uri.startswith(location.args[0])


def _parameters(words: list[str]) -> dict[str, str]:
    return {k.lower(): v for k, _, v in (w.partition("=") for w in words) if v}


def seconds(value: str) -> float | None:
    """An httpd timeout (seconds, or ``500ms``) in seconds; None when not a number."""
    if value.endswith("ms") and value[:-2].isdigit():
        return int(value[:-2]) / 1000
    return float(value) if value.isdigit() else None
