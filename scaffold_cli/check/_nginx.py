"""A small nginx configuration reader: tokens, directives, includes and location matching.

It reads what nginx reads (``name args...;`` and ``name args... { ... }``, ``#`` comments,
single and double quotes with backslash escapes, ``${var}``) and keeps the file, line and
column of every directive. ``include`` is followed relative to the including file (globs
too); an include that matches nothing is left out, as the file usually lives on the server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_MAX_INCLUDE_DEPTH = 16
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "r": "\r", "n": "\n"}


class NginxError(ValueError):
    """The file is not a well-formed nginx configuration: where, and why."""

    def __init__(self, path: Path, line: int, reason: str, column: int = 1) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.column = column
        self.reason = reason


@dataclass
class Directive:
    """One directive; *block* is None for ``name args;`` and a list for ``name args { }``."""

    name: str
    args: list[str]
    path: Path
    line: int
    column: int
    block: list[Directive] | None = None
    included: list[Path] = field(default_factory=list)


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
                raise NginxError(path, start_line, "unterminated quoted string", start_column)
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


def parse(path: Path, *, depth: int = 0) -> list[Directive]:
    """The directives of the nginx file *path*, includes spliced in where they appear."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise NginxError(path, 1, f"cannot read it ({error})") from error
    tokens = list(_tokens(text, path))
    position = 0

    def block(closing: bool) -> list[Directive]:
        nonlocal position
        directives: list[Directive] = []
        words: list[_Token] = []
        while position < len(tokens):
            token = tokens[position]
            position += 1
            if not token.quoted and token.text == ";":
                if not words:
                    continue
                directives += _directive(words, path, None, depth)
                words = []
            elif not token.quoted and token.text == "{":
                if not words:
                    raise NginxError(path, token.line, "unexpected '{'", token.column)
                inner = block(closing=True)
                directives += _directive(words, path, inner, depth)
                words = []
            elif not token.quoted and token.text == "}":
                if words:
                    raise NginxError(
                        path,
                        words[0].line,
                        f"directive '{words[0].text}' has no ';'",
                        words[0].column,
                    )
                if not closing:
                    raise NginxError(path, token.line, "unexpected '}'", token.column)
                return directives
            else:
                words.append(token)
        if words:
            raise NginxError(
                path, words[0].line, f"directive '{words[0].text}' has no ';'", words[0].column
            )
        if closing:
            raise NginxError(
                path, len(text.splitlines()) or 1, "unexpected end of file, a '}' is missing"
            )
        return directives

    return block(closing=False)


def _directive(
    words: list[_Token], path: Path, inner: list[Directive] | None, depth: int
) -> list[Directive]:
    head = words[0]
    directive = Directive(
        head.text, [w.text for w in words[1:]], path, head.line, head.column, inner
    )
    if directive.name != "include" or inner is not None or not directive.args:
        return [directive]
    if depth >= _MAX_INCLUDE_DEPTH:
        raise NginxError(path, head.line, f"includes nested more than {_MAX_INCLUDE_DEPTH} deep")
    pattern = directive.args[0]
    base = path.parent
    matches = sorted(base.glob(pattern)) if not Path(pattern).is_absolute() else []
    spliced: list[Directive] = []
    for match in matches:
        if match.is_file():
            directive.included.append(match)
            spliced += parse(match, depth=depth + 1)
    return [directive, *spliced]


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
        """The directive *name* in force here: the innermost level that sets it."""
        for level in self.chain:
            for directive in reversed(level):
                if directive.name == name:
                    return directive
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
