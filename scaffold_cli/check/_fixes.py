"""Mechanical fixes for ``check --fix`` and ``--diff``: edits made in the file's own style.

A rule attaches the edits that fix a finding when the fix cannot change what the code means
beyond the mistake (wrap a generator, add or remove a header, read the session in the view,
turn buffering off in a location, switch a gunicorn configuration to gthread). Anything else
is left alone and reported. Positions are lines from 1 and columns from 0, in characters;
`ast` gives UTF-8 byte offsets, converted here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from pathlib import Path

from ._findings import Edit, Finding
from ._sources import read_text

# The threads a gunicorn configuration switched to gthread gets (FS202's minimum).
FIX_THREADS = 8


def source(path: Path) -> list[str]:
    """The lines of *path* as a check reads them (a ``--diff`` round's text included)."""
    text = read_text(path)
    return text.splitlines(keepends=True) if isinstance(text, str) else []


def _column(lines: Sequence[str], line: int, byte_column: int) -> int:
    if not 0 < line <= len(lines):
        return byte_column
    return len(lines[line - 1].encode("utf-8")[:byte_column].decode("utf-8", errors="replace"))


def _number(node: ast.AST, name: str, default: int) -> int:
    value = getattr(node, name, None)
    return value if isinstance(value, int) else default


def start(lines: Sequence[str], node: ast.AST) -> tuple[int, int]:
    line = _number(node, "lineno", 1)
    return line, _column(lines, line, _number(node, "col_offset", 0))


def end(lines: Sequence[str], node: ast.AST) -> tuple[int, int]:
    last = _number(node, "end_lineno", _number(node, "lineno", 1))
    return last, _column(lines, last, _number(node, "end_col_offset", 0))


def text_of(lines: Sequence[str], node: ast.AST) -> str:
    """The source text of *node*."""
    (first, column), (last, end_column) = start(lines, node), end(lines, node)
    if first == last:
        return lines[first - 1][column:end_column]
    middle = "".join(lines[first : last - 1])
    return lines[first - 1][column:] + middle + lines[last - 1][:end_column]


def indentation(lines: Sequence[str], line: int) -> str:
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return text[: len(text) - len(text.lstrip())]


def quote(lines: Sequence[str], nodes: Iterable[ast.AST]) -> str:
    """The quote the file uses for these string literals (double by default)."""
    for node in nodes:
        text = text_of(lines, node)
        if text[:1] in "'\"":
            return text[0]
    return '"'


def delete_lines(path: Path, lines: Sequence[str], node: ast.stmt) -> tuple[Edit, ...]:
    """Remove the statement *node* with its lines, when nothing else shares them."""
    (first, column), (last, end_column) = start(lines, node), end(lines, node)
    before = lines[first - 1][:column]
    after = lines[last - 1][end_column:]
    if before.strip() or (after.strip() and not after.strip().startswith("#")):
        return ()
    return (Edit(path, (first, 0), (last + 1, 0), ""),)


def insert_line(path: Path, line: int, text: str) -> Edit:
    """Insert *text* (a whole line, ending with a line break) before line *line*."""
    return Edit(path, (line, 0), (line, 0), text)


def apply(text: str, edits: Iterable[Edit]) -> tuple[str, list[Edit]]:
    """*text* with *edits* made, and the edits made: identical ones once, and of those that
    overlap only the first (the others wait for the next round)."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(position: tuple[int, int]) -> int:
        line, column = position
        if line > len(lines):
            return len(text)
        return offsets[line - 1] + min(column, len(lines[line - 1]))

    chosen: list[tuple[int, int, Edit]] = []
    for edit in sorted(set(edits)):
        begin, finish = offset(edit.start), offset(edit.end)
        if any((begin < f and s < finish) or (begin, finish) == (s, f) for s, f, _ in chosen):
            continue  # overlaps an edit already chosen: the next round makes it
        chosen.append((begin, finish, edit))
    for begin, finish, edit in sorted(chosen, key=lambda item: (item[0], item[1]), reverse=True):
        text = text[:begin] + edit.text + text[finish:]
    return text, [edit for _, _, edit in chosen]


def fixable(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.fix]
