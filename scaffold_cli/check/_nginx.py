"""A small nginx configuration reader: tokens, directives, includes and location matching.

It reads what nginx reads (``name args...;`` and ``name args... { ... }``, ``#`` comments,
single and double quotes with backslash escapes, ``${var}``) and keeps the file, line and
column of every directive.

``include`` is resolved as nginx resolves it: a relative path against the directory of the
main configuration file (not of the including file), an absolute one under nginx's usual
configuration directories (``/etc/nginx/...``) against that same directory, globs too. A
file ``X.template`` (rendered by envsubst when a container starts) stands for ``X``. The
files nginx ships (``mime.types``, ``*_params``) are left out. An include that cannot be
read, and a ``${PLACEHOLDER}`` that stands for whole directives, are *opaque*: they may set
anything, so what is not set closer to a location is not known there.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._sources import ConfigError, ConfigNode, read_config

_MAX_INCLUDE_DEPTH = 16
# Where nginx's configuration lives when installed: absolute includes below these are read
# against the directory of the project's main configuration file.
_CONFIGURATION_DIRECTORIES = ("/etc/nginx/", "/usr/local/nginx/conf/", "/usr/local/etc/nginx/")
# Files nginx ships, which set no proxying: an include of one is no unknown.
_SHIPPED = re.compile(r"^(mime\.types|(fastcgi|uwsgi|scgi|proxy)_params|koi-utf|koi-win|win-utf)$")
_PLACEHOLDER = re.compile(r"^\$\{[A-Z][A-Z0-9_]*\}$")
_GLOB = re.compile(r"[*?\[]")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "r": "\r", "n": "\n"}


@dataclass
class Directive(ConfigNode):
    """One directive; *block* is None for ``name args;`` and a list for ``name args { }``.
    Opaque: an include that cannot be read, or a ${PLACEHOLDER} that stands for directives."""

    block: list[Directive] | None = None
    # Where the directive ends: its ';' or its block's '}' (line, column).
    end: tuple[int, int] = (0, 0)

    @property
    def unknown_value(self) -> bool:
        """Whether an argument is a ``${PLACEHOLDER}`` filled in at deploy time."""
        return any("${" in arg for arg in self.args)


@dataclass(frozen=True)
class _Token:
    text: str
    line: int
    column: int
    quoted: bool


def _tokens(text: str, path: Path) -> Iterator[_Token]:  # noqa: PLR0912
    i, line, column = 0, 1, 1
    length = len(text)

    def advance(count: int = 1) -> None:
        nonlocal i, line, column
        for _ in range(count):
            if text[i] == "\n":
                line, column = line + 1, 1
            else:
                column += 1
            i += 1

    def escape() -> str:
        """The next character; nginx unescapes only \\" \\' \\\\ \\t \\r \\n, keeping others."""
        char = text[i]
        advance()
        if char != "\\" or i >= length:
            return char
        following = text[i]
        if following in _ESCAPES:
            advance()
            return _ESCAPES[following]
        return char

    while i < length:
        char = text[i]
        if char.isspace():
            advance()
        elif char == "#":
            while i < length and text[i] != "\n":
                advance()
        elif char in "{};":
            yield _Token(char, line, column, quoted=False)
            advance()
        elif char in "\"'":
            start_line, start_column, quote = line, column, char
            advance()
            value: list[str] = []
            while i < length and text[i] != quote:
                value.append(escape())
            if i >= length:
                raise ConfigError(path, start_line, "unterminated quoted string", start_column)
            advance()
            yield _Token("".join(value), start_line, start_column, quoted=True)
        else:
            start_line, start_column = line, column
            value = []
            while i < length and not text[i].isspace() and text[i] not in ";{}":
                if text[i] == "$" and i + 1 < length and text[i + 1] == "{":
                    while i < length and text[i] != "}":
                        value.append(text[i])
                        advance()
                if i < length:
                    value.append(escape())
            yield _Token("".join(value), start_line, start_column, quoted=False)


def parse(path: Path, conf_dir: Path | None = None, *, depth: int = 0) -> list[Directive]:
    """The directives of the nginx file *path*, includes spliced in where they appear.

    Relative includes are read against *conf_dir*, the directory of the main configuration
    file; without one (a file no main configuration in the project includes), against the
    nearest of the file's directory and the directories above it that has the file.
    """
    text = read_config(path)
    tokens = list(_tokens(text, path))
    position = 0

    def block(closing: bool) -> list[Directive]:
        nonlocal position
        directives: list[Directive] = []
        words: list[_Token] = []
        while position < len(tokens):
            token = tokens[position]
            position += 1
            end = (token.line, token.column)
            if not words and not token.quoted and _PLACEHOLDER.match(token.text):
                directives.append(
                    Directive(token.text, [], path, token.line, token.column, opaque=True, end=end)
                )
            elif not token.quoted and token.text == ";":
                if not words:
                    continue
                directives += _directive(words, path, None, end, conf_dir, depth)
                words = []
            elif not token.quoted and token.text == "{":
                if not words:
                    raise ConfigError(path, token.line, "unexpected '{'", token.column)
                inner = block(closing=True)
                closed = tokens[position - 1]
                directives += _directive(
                    words, path, inner, (closed.line, closed.column), conf_dir, depth
                )
                words = []
            elif not token.quoted and token.text == "}":
                if words:
                    raise ConfigError(
                        path,
                        words[0].line,
                        f"directive '{words[0].text}' has no ';'",
                        words[0].column,
                    )
                if not closing:
                    raise ConfigError(path, token.line, "unexpected '}'", token.column)
                return directives
            else:
                words.append(token)
        if words:
            raise ConfigError(
                path, words[0].line, f"directive '{words[0].text}' has no ';'", words[0].column
            )
        if closing:
            raise ConfigError(
                path, len(text.splitlines()) or 1, "unexpected end of file, a '}' is missing"
            )
        return directives

    return block(closing=False)


def _directive(  # noqa: PLR0917
    words: list[_Token],
    path: Path,
    inner: list[Directive] | None,
    end: tuple[int, int],
    conf_dir: Path | None,
    depth: int,
) -> list[Directive]:
    head = words[0]
    directive = Directive(
        head.text, [w.text for w in words[1:]], path, head.line, head.column, inner, end=end
    )
    if directive.name != "include" or inner is not None or not directive.args:
        return [directive]
    if depth >= _MAX_INCLUDE_DEPTH:
        raise ConfigError(path, head.line, f"includes nested more than {_MAX_INCLUDE_DEPTH} deep")
    matches = include_targets(directive.args[0], path, conf_dir)
    if matches is None:
        directive.opaque = True
        return [directive]
    spliced: list[Directive] = []
    for match in matches:
        directive.included.append(match)
        spliced += parse(match, conf_dir, depth=depth + 1)
    return [directive, *spliced]


def rendered_name(path: Path) -> str:
    """The name a file has once deployed: ``proxy.conf`` for ``proxy.conf.template``."""
    return path.name.removesuffix(".template")


def include_targets(pattern: str, including: Path, conf_dir: Path | None) -> list[Path] | None:
    """The files ``include pattern`` reads, in nginx's order; None when that cannot be known
    (the file or its directory is not in the project, ``${VARIABLE}`` in the path)."""
    if _SHIPPED.match(Path(pattern).name) or "$" in pattern:
        return [] if "$" not in pattern else None
    relative = pattern
    if pattern.startswith("/"):
        prefix = next((p for p in _CONFIGURATION_DIRECTORIES if pattern.startswith(p)), None)
        if prefix is None or conf_dir is None:
            return None
        relative = pattern[len(prefix) :]
    if conf_dir is not None:
        bases = [conf_dir]
    else:
        bases = [including.parent, *list(including.parent.parents)[:3]]
    for base in bases:
        found = _matching(base, relative)
        if found:
            return found
    if _GLOB.search(Path(relative).name) and (bases[0] / relative).parent.is_dir():
        return []  # a glob that matches nothing, in a directory the project has: nothing
    return None


def _matching(base: Path, relative: str) -> list[Path]:
    """The files below *base* that *relative* (a name or a glob) names, templates included."""
    target = base / relative
    directory = target.parent
    if _GLOB.search(str(Path(relative).parent)) or not directory.is_dir():
        return sorted(p for p in base.glob(relative) if p.is_file())
    return sorted(
        (
            p
            for p in directory.iterdir()
            if p.is_file() and fnmatch.fnmatchcase(rendered_name(p), target.name)
        ),
        key=rendered_name,
    )


def included_files(directives: Sequence[Directive]) -> Iterator[Path]:
    """Every file an ``include`` in *directives* brought in, at any depth."""
    for directive in directives:
        yield from directive.included
        if directive.block is not None:
            yield from included_files(directive.block)


# ------------------------------------------------------------------ locations
@dataclass(frozen=True)
class Location:
    """A ``location`` and the blocks around it, innermost first (for inherited settings)."""

    directive: Directive
    chain: tuple[list[Directive], ...]

    @property
    def label(self) -> str:
        return "location " + " ".join(self.directive.args)

    def setting(self, name: str) -> Directive | None:
        """The directive *name* in force here: the innermost level that sets it. An opaque
        directive (see `Directive.opaque`) met first is returned instead: not known."""
        for level in self.chain:
            for directive in reversed(level):
                if directive.name == name:
                    return directive
            opaque = next((d for d in level if d.opaque), None)
            if opaque is not None:
                return opaque
        return None

    def own(self, name: str) -> Directive | None:
        """The directive *name* in this location itself (not inherited: e.g. proxy_pass)."""
        assert self.directive.block is not None
        return next((d for d in self.directive.block if d.name == name), None)


def servers(directives: list[Directive]) -> Iterator[tuple[list[Directive], ...]]:
    """Each ``server`` block's chain (server, http, main); a bare snippet of locations too."""
    found = False
    for directive in directives:
        if directive.name == "http" and directive.block is not None:
            for inner in directive.block:
                if inner.name == "server" and inner.block is not None:
                    found = True
                    yield (inner.block, directive.block, directives)
        elif directive.name == "server" and directive.block is not None:
            found = True
            yield (directive.block, directives)
    if not found and any(d.name == "location" for d in directives):
        yield (directives,)


def _split(directive: Directive) -> tuple[str, str]:
    args = directive.args
    if len(args) >= 2:
        return args[0], args[1]
    only = args[0] if args else ""
    for modifier in ("^~", "~*", "=", "~"):
        if only.startswith(modifier) and len(only) > len(modifier):
            return modifier, only[len(modifier) :]
    return "", only


def match_location(chain: tuple[list[Directive], ...], uri: str) -> Location | None:
    """The location nginx picks for *uri* among the locations of *chain*'s innermost block.

    Exact (``=``) match first, then the longest prefix; a ``^~`` prefix stops there, else
    regular expressions (``~``, ``~*``) in order, else the longest prefix. Nested locations
    are searched the same way inside the one chosen.
    """
    locations = [d for d in chain[0] if d.name == "location" and d.block is not None]
    if any(d.opaque for d in chain[0]) or any(d.unknown_value for d in locations):
        return None  # a location may hide there: which one is chosen is not known
    best: Directive | None = None
    best_length = -1
    best_modifier = ""
    for directive in locations:
        modifier, pattern = _split(directive)
        if modifier == "=" and pattern == uri:
            return Location(directive, (directive.block or [], *chain))
        prefix = modifier in ("", "^~") and not pattern.startswith("@")
        if prefix and uri.startswith(pattern) and len(pattern) > best_length:
            best, best_length, best_modifier = directive, len(pattern), modifier
    chosen = best
    if best_modifier != "^~":
        for directive in locations:
            modifier, pattern = _split(directive)
            if modifier in ("~", "~*"):
                flags = re.IGNORECASE if modifier == "~*" else 0
                try:
                    if re.search(pattern, uri, flags):
                        chosen = directive
                        break
                except re.error:
                    continue
    if chosen is None:
        return None
    found = Location(chosen, (chosen.block or [], *chain))
    nested = (
        match_location(found.chain, uri)
        if any(d.name == "location" for d in chosen.block or [])
        else None
    )
    return nested or found


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_TIME = re.compile(r"(\d+)(ms|s|m|h|d|w|M|y)?")


def seconds(value: str) -> float | None:
    """An nginx time (``60``, ``60s``, ``1m30s``, ``500ms``) in seconds; None if malformed."""
    total, position = 0.0, 0
    while position < len(value):
        match = _TIME.match(value, position)
        if match is None:
            return None
        unit = match.group(2) or "s"
        if unit not in _UNITS:
            return None
        total += int(match.group(1)) * _UNITS[unit]
        position = match.end()
    return total if value else None
