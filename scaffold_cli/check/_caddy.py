"""A small Caddyfile reader: sites, snippets, imports, matchers, and what serves a path.

It reads what the Caddyfile adapter reads: one directive a line, ``{`` ending a line opens a
block and ``}`` on its own line closes it, ``#`` comments, ``"quoted"`` and `` `raw` ``
tokens, the global options block, ``(snippet)`` blocks and ``import`` of snippets or files
(relative to the importing file). ``{$VAR}`` and ``{env.VAR}`` are values known only at
run time.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ._sources import ConfigError, ConfigNode, read_config

_MAX_IMPORT_DEPTH = 10
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class Node(ConfigNode):
    """A directive (or site, snippet, subdirective): its words, where, and its block. Opaque:
    an import that cannot be read; *included*: the files an import brought in."""

    block: list[Node] | None = None

    def children(self, name: str) -> list[Node]:
        return [node for node in self.block or [] if node.name == name]

    def child(self, name: str) -> Node | None:
        return next(iter(self.children(name)), None)


@dataclass(frozen=True)
class _Token:
    text: str
    line: int
    column: int
    quoted: bool


def _tokens(text: str, path: Path) -> Iterator[list[_Token]]:
    """The lines of *text* as lists of tokens (blank and comment lines left out)."""
    for number, raw in enumerate(text.splitlines(), start=1):
        tokens: list[_Token] = []
        i = 0
        while i < len(raw):
            char = raw[i]
            if char.isspace():
                i += 1
            elif char == "#" and (i == 0 or raw[i - 1].isspace()):
                break
            elif char in '"`':
                end = i + 1
                value: list[str] = []
                while end < len(raw) and raw[end] != char:
                    if char == '"' and raw[end] == "\\" and end + 1 < len(raw):
                        end += 1
                    value.append(raw[end])
                    end += 1
                if end >= len(raw):
                    raise ConfigError(path, number, "unterminated quoted token", i + 1)
                tokens.append(_Token("".join(value), number, i + 1, quoted=True))
                i = end + 1
            else:
                end = i
                while end < len(raw) and not raw[end].isspace():
                    end += 1
                tokens.append(_Token(raw[i:end], number, i + 1, quoted=False))
                i = end
        if tokens:
            yield tokens


def parse(path: Path, *, depth: int = 0) -> list[Node]:
    """The top-level nodes of the Caddyfile *path*: the global options block (named ``{}``),
    snippets (``(name)``) and sites (named by their first address), imports spliced in."""
    text = read_config(path)
    lines = list(_tokens(text, path))
    position = 0

    def block(closing: bool) -> list[Node]:
        nonlocal position
        nodes: list[Node] = []
        while position < len(lines):
            words = lines[position]
            position += 1
            if len(words) == 1 and words[0].text == "}" and not words[0].quoted:
                if not closing:
                    raise ConfigError(path, words[0].line, "unexpected '}'", words[0].column)
                return nodes
            opens = words[-1].text == "{" and not words[-1].quoted
            head = words[:-1] if opens else words
            inner = block(closing=True) if opens else None
            first = head[0] if head else words[0]
            node = Node(
                first.text if head else "{}",
                [w.text for w in head[1:]],
                path,
                first.line,
                first.column,
                inner,
            )
            nodes.append(node)
        if closing:
            raise ConfigError(path, len(text.splitlines()) or 1, "a '}' is missing")
        return nodes

    nodes = block(closing=False)
    if nodes and nodes[0].name != "{}" and nodes[0].block is None:
        # One site without braces: its address, then its directives.
        site = nodes[0]
        nodes = [Node(site.name, site.args, path, site.line, site.column, nodes[1:])]
    snippets = {n.name[1:-1]: n for n in nodes if n.name.startswith("(") and n.name.endswith(")")}
    for node in nodes:
        if node.block is not None:
            node.block = _imports(node.block, snippets, path, depth)
    return nodes


def _imports(nodes: list[Node], snippets: dict[str, Node], path: Path, depth: int) -> list[Node]:
    """*nodes* with each ``import`` replaced by what it imports (blocks too)."""
    result: list[Node] = []
    for node in nodes:
        if node.block is not None:
            node.block = _imports(node.block, snippets, path, depth)
        if node.name != "import" or not node.args:
            result.append(node)
            continue
        name = node.args[0]
        if name in snippets:
            result.append(node)
            result += [_copy(n) for n in snippets[name].block or []]
            continue
        files = sorted(p for p in path.parent.glob(name) if p.is_file()) if "{" not in name else []
        if not files or depth >= _MAX_IMPORT_DEPTH:
            node.opaque = True
            result.append(node)
            continue
        result.append(node)
        for file in files:
            node.included.append(file)
            result += parse(file, depth=depth + 1)
    return result


def _copy(node: Node) -> Node:
    block = None if node.block is None else [_copy(n) for n in node.block]
    return Node(node.name, list(node.args), node.path, node.line, node.column, block, node.opaque)


def sites(nodes: list[Node]) -> Iterator[Node]:
    """The site blocks (not the global options, not snippets)."""
    for node in nodes:
        if node.block is not None and node.name != "{}" and not node.name.startswith("("):
            yield node


def global_option(nodes: list[Node], *names: str) -> Node | None:
    """The global option at ``names`` (``servers``, ``timeouts``, ``write``), if set."""
    current = next((n for n in nodes if n.name == "{}"), None)
    for name in names:
        if current is None:
            return None
        found = [n for n in current.block or [] if n.name == name]
        current = found[-1] if found else None
    return current


def seconds(value: str) -> float | None:
    """A Caddy duration (``10s``, ``1m30s``, ``500ms``, ``1d``) in seconds; None if unknown."""
    if value == "0":
        return 0.0
    total, position = 0.0, 0
    while position < len(value):
        match = _DURATION.match(value, position)
        if match is None:
            return None
        number, unit = float(match.group(1)), match.group(2)
        total += number * (86400.0 if unit == "d" else _UNITS[unit])
        position = match.end()
    return total if value else None


# ------------------------------------------------------------------ matchers
@dataclass(frozen=True)
class Matchers:
    """The named matchers of a site (``@name ...``), to tell whether one matches a path."""

    named: dict[str, list[Node]]

    @classmethod
    def of(cls, site: Node) -> Matchers:
        named: dict[str, list[Node]] = {}
        for node in site.block or []:
            if node.name.startswith("@"):
                named.setdefault(node.name, [])
                if node.block is not None:
                    named[node.name] += node.block
                elif node.args:
                    named[node.name].append(
                        Node(node.args[0], node.args[1:], node.path, node.line, node.column)
                    )
        return cls(named)

    def matches(self, matcher: str | None, uri: str) -> bool | None:
        """Whether *matcher* (``*``, a path, ``@name``, None for none) matches *uri*; None
        when that cannot be told (a header, a method, a remote address...)."""
        if matcher is None or matcher == "*":
            return True
        if matcher.startswith("/"):
            return _path_matches(matcher, uri)
        if not matcher.startswith("@") or matcher not in self.named:
            return None
        result: bool | None = True
        for condition in self.named[matcher]:
            found = _condition(condition, uri)
            if found is None:
                return None
            result = result and found
        return result


def _path_matches(pattern: str, uri: str) -> bool:
    return fnmatch.fnmatchcase(uri, pattern) if "*" in pattern else uri == pattern


def _condition(node: Node, uri: str) -> bool | None:
    if node.name == "path":
        return any(_path_matches(p, uri) for p in node.args)
    if node.name == "path_regexp" and node.args:
        try:
            return re.search(node.args[-1], uri) is not None
        except re.error:
            return None
    if node.name == "not":
        inner = (
            [Node(node.args[0], node.args[1:], node.path, node.line, node.column)]
            if node.args
            else node.block or []
        )
        results = [_condition(n, uri) for n in inner]
        return None if None in results else not all(results)
    return None


def matcher_of(node: Node) -> str | None:
    """The matcher token a directive starts with (``/path``, ``@name``, ``*``), if any."""
    first = node.args[0] if node.args else ""
    return first if first.startswith(("/", "@")) or first == "*" else None


@dataclass(frozen=True)
class Route:
    """What serves *uri* in a site: the ``reverse_proxy`` chosen, and every directive in
    force on the way to it (site level first, then the ``handle``/``route`` blocks)."""

    proxy: Node
    directives: list[Node]


def serve(site: Node, uri: str) -> Route | None:
    """The route a request for *uri* takes through *site* to a ``reverse_proxy``; None when
    it reaches none, or when which one cannot be told."""
    matchers = Matchers.of(site)
    return _serve(site.block or [], matchers, uri, [])


def _serve(nodes: list[Node], matchers: Matchers, uri: str, above: list[Node]) -> Route | None:
    if any(n.opaque for n in nodes):
        return None  # an import that cannot be read may hold the handler
    here: list[Node] = []
    handles: list[tuple[int, Node]] = []
    proxy: Node | None = None
    for node in nodes:
        token = matcher_of(node)
        matched = matchers.matches(token, uri)
        if node.name in ("handle", "handle_path", "route"):
            if matched is None:
                return None
            if matched:
                length = len(token) if token and token.startswith("/") else 0
                handles.append((length, node))
            continue
        if matched is None and node.name in ("reverse_proxy", "encode"):
            return None
        if matched:
            here.append(node)
            if node.name == "reverse_proxy" and proxy is None:
                proxy = node
    if handles:
        _, chosen = max(handles, key=lambda item: item[0])  # the most specific path first
        found = _serve(chosen.block or [], matchers, uri, [*above, *here])
        if found is not None or proxy is None:
            return found
    if proxy is None:
        return None
    return Route(proxy, [*above, *here])
