"""Edits that find their place by meaning, for the mutation catalogue.

Python is edited through its syntax tree: a pattern is Python code, matched against the
tree of the file (so formatting, comments, quotes and line wrapping do not matter), with
``...`` standing for any expression (or, as a whole block, for any statements), optionally
inside a named function or class. The
match is then replaced, deleted or extended in the text itself, so that everything around
it stays as written. Configuration files (nginx, Caddy, Apache) are edited by directive:
a line is found by its first words, comments ignored.

Every edit must find exactly one place. When the code has moved on and a pattern finds
none (or several), the edit raises `AnchorLost` naming the pattern: the catalogue then
fails for that mutant until its anchor is brought up to date, instead of silently
mutating nothing.
"""

from __future__ import annotations

import ast
import shlex
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

# Fields that say where a node is or how it is used, not what it is.
_IGNORED_FIELDS = frozenset({"ctx", "type_comment", "kind"})


class AnchorLost(Exception):
    """An edit found no place, or more than one, for its pattern."""


class Edit(Protocol):
    """A change to the text of one file."""

    def apply(self, text: str) -> str:
        """The edited *text*; `AnchorLost` when the place to edit is not found once."""
        ...


# ------------------------------------------------------------------------------- Python


@dataclass(frozen=True)
class Code:
    """Where a Python edit applies: the one node matching *pattern*, inside *within*.

    *pattern* is an expression or a statement; ``...`` in it matches any expression, and
    a block of just ``...`` any block. A call ``f(...)`` matches any call of ``f``, and
    ``f(..., name=value)`` any call of ``f`` passing that keyword. *within* names a
    function or class (``"_pump"``, ``"Subscription._accept"``) at any depth; ``"a.b"``
    means a ``b`` defined inside an ``a``. *part* names a field of the match to edit
    instead of the whole of it: ``"test"`` (the condition of an ``if``), ``"value"``,
    ``"args.0"`` (the first argument), ``"keywords.name"`` (the value of a keyword).
    """

    pattern: str
    within: str | None = None
    part: str | None = None

    def __str__(self) -> str:
        return f"{self.pattern!r}" + (f" in {self.within}" if self.within else "")

    def find(self, tree: ast.Module) -> ast.AST:
        """The one node of *tree* this anchor names."""
        [statement] = ast.parse(textwrap.dedent(self.pattern)).body
        wanted: ast.AST = statement.value if isinstance(statement, ast.Expr) else statement
        found = [node for node in ast.walk(self.scope(tree)) if _same(wanted, node)]
        if len(found) != 1:
            raise AnchorLost(f"{self} matches {len(found)} places, not one")
        node: object = found[0]
        for step in self.part.split(".") if self.part else ():
            node = _field(node, step)
        if not isinstance(node, ast.AST):
            raise AnchorLost(f"{self}: its part {self.part!r} is not one node")
        return node

    def scope(self, tree: ast.Module) -> ast.AST:
        if self.within is None:
            return tree
        *outer, name = self.within.split(".")
        scopes = [
            node
            for node, parents in _definitions(tree, [])
            if node.name == name and _in_order(outer, [p.name for p in parents])
        ]
        if len(scopes) != 1:
            raise AnchorLost(f"{self.within} is defined {len(scopes)} times, not once")
        return scopes[0]


Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _definitions(
    node: ast.AST, parents: list[Definition]
) -> Iterator[tuple[Definition, list[Definition]]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, Definition):
            yield child, parents
            yield from _definitions(child, [*parents, child])
        else:
            yield from _definitions(child, parents)


def _in_order(names: list[str], parents: list[str]) -> bool:
    """Whether *names* appear among *parents* in this order (others may come between)."""
    remaining = iter(parents)
    return all(name in remaining for name in names)


def _same(pattern: object, node: object) -> bool:
    """Whether *node* is what *pattern* describes; ``...`` in the pattern matches anything."""
    if isinstance(pattern, ast.Constant) and pattern.value is Ellipsis:
        return isinstance(node, ast.expr)
    if isinstance(pattern, ast.Call) and _is_any_arguments(pattern.args):
        return (
            isinstance(node, ast.Call)
            and _same(pattern.func, node.func)
            and all(any(_same(k, n) for n in node.keywords) for k in pattern.keywords)
        )
    if isinstance(pattern, ast.AST):
        return type(pattern) is type(node) and all(
            _same(value, getattr(node, name))
            for name, value in ast.iter_fields(pattern)
            if name not in _IGNORED_FIELDS
        )
    if isinstance(pattern, list) and _is_any_block(pattern):
        return isinstance(node, list) and all(isinstance(n, ast.stmt) for n in node)
    if isinstance(pattern, list):
        return (
            isinstance(node, list)
            and len(pattern) == len(node)
            and all(_same(p, n) for p, n in zip(pattern, node, strict=True))
        )
    return bool(pattern == node)


def _field(node: object, step: str) -> object:
    """The part *step* of *node*: a field, an index into a list, or a keyword by name."""
    if isinstance(node, list) and step.isdigit():
        found: object = node[int(step)] if int(step) < len(node) else None
    elif isinstance(node, list):
        found = next((k.value for k in node if isinstance(k, ast.keyword) and k.arg == step), None)
    else:
        found = getattr(node, step, None)
    if found is None:
        raise AnchorLost(f"no part {step!r} in {node!r}")
    return found


def _is_any_arguments(arguments: list[ast.expr]) -> bool:
    """Whether *arguments* is just ``...``."""
    return (
        len(arguments) == 1
        and isinstance(arguments[0], ast.Constant)
        and arguments[0].value is Ellipsis
    )


def _is_any_block(statements: list[object]) -> bool:
    """Whether *statements* is a block of just ``...``."""
    [only] = statements if len(statements) == 1 else [None]
    return (
        isinstance(only, ast.Expr)
        and isinstance(only.value, ast.Constant)
        and only.value.value is Ellipsis
    )


class _Source:
    """A Python file's text, with the byte offsets that ``ast`` positions count in."""

    def __init__(self, text: str) -> None:
        self.data = text.encode()
        self.tree = ast.parse(self.data)
        self._starts = [0]
        for line in self.data.splitlines(keepends=True):
            self._starts.append(self._starts[-1] + len(line))

    def offset(self, line: int, column: int) -> int:
        return self._starts[line - 1] + column

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def lines(self, first: ast.AST, last: ast.AST) -> tuple[int, int]:
        """The whole lines from *first*'s to *last*'s, their line breaks included."""
        return self._starts[first.lineno - 1], self._starts[last.end_lineno]  # type: ignore[attr-defined]

    def text(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.data[start:end].decode()

    def indent(self, node: ast.AST) -> str:
        start = self._starts[node.lineno - 1]  # type: ignore[attr-defined]
        line = self.data[start : self.offset(node.lineno, node.col_offset)]  # type: ignore[attr-defined]
        return line.decode()

    def statement_of(self, node: ast.AST) -> ast.stmt:
        """*node* if it is a statement, else the innermost statement that holds it."""
        if isinstance(node, ast.stmt):
            return node
        holders = [
            candidate
            for candidate in ast.walk(self.tree)
            if isinstance(candidate, ast.stmt)
            and any(child is node for child in ast.walk(candidate))
        ]
        return min(holders, key=lambda s: s.end_lineno - s.lineno)  # type: ignore[operator]

    def splice(self, start: int, end: int, new: str) -> str:
        return (self.data[:start] + new.encode() + self.data[end:]).decode()


@dataclass(frozen=True)
class Replace:
    """Replace the node at *at* by *by*.

    *by* may name the node's own text as ``{node}`` and its parts by field, e.g.
    ``{args[0]}`` of a call, ``{left}`` and ``{comparators[0]}`` of a comparison.
    """

    at: Code
    by: str

    def apply(self, text: str) -> str:
        source = _Source(text)
        node = self.at.find(source.tree)
        parts: dict[str, object] = {"node": source.text(node)}
        for name, value in ast.iter_fields(node):
            if isinstance(value, ast.AST) and hasattr(value, "lineno"):
                parts[name] = source.text(value)
            elif isinstance(value, list):
                parts[name] = [source.text(v) for v in value if hasattr(v, "lineno")]
        return source.splice(*source.span(node), self.by.format(**parts))


@dataclass(frozen=True)
class Delete:
    """Replace the statement at *at* (or the one holding it) by ``pass``."""

    at: Code

    def apply(self, text: str) -> str:
        source = _Source(text)
        statement = source.statement_of(self.at.find(source.tree))
        return source.splice(*source.span(statement), "pass")


@dataclass(frozen=True)
class Insert:
    """Add the statement *code* right after the statement at *at*, or before it."""

    at: Code
    code: str
    before: bool = False

    def apply(self, text: str) -> str:
        source = _Source(text)
        statement = source.statement_of(self.at.find(source.tree))
        start, end = source.lines(statement, statement)
        code = textwrap.indent(textwrap.dedent(self.code).strip() + "\n", source.indent(statement))
        at = start if self.before else end
        return source.splice(at, at, code)


@dataclass(frozen=True)
class Undecorate:
    """Remove the decorator at *at* (an expression of a decorator list), ``@`` and all."""

    at: Code

    def apply(self, text: str) -> str:
        source = _Source(text)
        decorator = self.at.find(source.tree)
        if not any(
            decorator in getattr(node, "decorator_list", ()) for node in ast.walk(source.tree)
        ):
            raise AnchorLost(f"{self.at} is not a decorator")
        start, end = source.lines(decorator, decorator)
        return source.splice(start, end, "")


@dataclass(frozen=True)
class Unprotect:
    """Turn the ``try`` whose ``finally`` holds *at* into its body followed by its clean-up.

    The clean-up then runs only when the body ends normally: not on an exception, and not
    when a generator is closed at a ``yield`` of its body (``GeneratorExit``).
    """

    at: Code

    def apply(self, text: str) -> str:
        source = _Source(text)
        anchor = self.at.find(source.tree)
        holders = [
            node
            for node in ast.walk(source.tree)
            if isinstance(node, ast.Try)
            and any(inner is anchor for s in node.finalbody for inner in ast.walk(s))
        ]
        if not holders:
            raise AnchorLost(f"{self.at} is not in the finally of a try")
        node = max(holders, key=lambda t: t.lineno)
        parts = []
        for block in (node.body, node.finalbody):
            start, end = source.lines(block[0], block[-1])
            parts.append(textwrap.dedent(source.data[start:end].decode()))
        start, end = source.lines(node, node)
        return source.splice(start, end, textwrap.indent("".join(parts), source.indent(node)))


# ------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class Directive:
    """Where a configuration edit applies: the line whose first words are *words*.

    Comments are ignored, and so are a trailing ``;`` or ``{``. *occurrence* picks one of
    several such lines (0 for the first); without it the line must be the only one.
    """

    words: tuple[str, ...]
    occurrence: int | None = None

    def __str__(self) -> str:
        return " ".join(self.words) + ("" if self.occurrence is None else f" #{self.occurrence}")

    def find(self, lines: list[str]) -> int:
        wanted = list(self.words)
        found = [n for n, line in enumerate(lines) if _words(line)[: len(wanted)] == wanted]
        if self.occurrence is None and len(found) == 1:
            return found[0]
        if self.occurrence is not None and self.occurrence < len(found):
            return found[self.occurrence]
        raise AnchorLost(f"directive {self} is on {len(found)} lines")


def _words(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True)
    lexer.commenters = "#"
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:  # an unbalanced quote: not a directive of ours
        return []
    if words and words[-1] in {";", "{"}:
        words.pop()
    return [word.removesuffix(";") for word in words]


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


@dataclass(frozen=True)
class ReplaceLine:
    """Replace the directive at *at* by *line*, at the same indentation."""

    at: Directive
    line: str

    def apply(self, text: str) -> str:
        lines = text.splitlines(keepends=True)
        index = self.at.find(lines)
        lines[index] = _indent(lines[index]) + self.line + "\n"
        return "".join(lines)


@dataclass(frozen=True)
class DeleteLine:
    """Remove the directive at *at*."""

    at: Directive

    def apply(self, text: str) -> str:
        lines = text.splitlines(keepends=True)
        del lines[self.at.find(lines)]
        return "".join(lines)


@dataclass(frozen=True)
class InsertLine:
    """Add *line* right after the directive at *at*, at its indentation."""

    at: Directive
    line: str

    def apply(self, text: str) -> str:
        lines = text.splitlines(keepends=True)
        index = self.at.find(lines)
        lines.insert(index + 1, _indent(lines[index]) + self.line + "\n")
        return "".join(lines)
