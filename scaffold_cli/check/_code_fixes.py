"""The fixes of the FS1xx rules, in the style the file already uses (see `_fixes`)."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from pathlib import Path

from ._findings import Edit
from ._fixes import delete_lines, end, indentation, insert_line, quote, source, start, text_of
from ._model import Function, Header, Module, Project, Stream, StreamSite, last_name

_WRAPPER = "stream_with_context"
_HEADER_VALUES = {
    "x-accel-buffering": ("X-Accel-Buffering", "no"),
    "cache-control": (
        "Cache-Control",
        "no-cache",
    ),
}


def _style(module: Module) -> str | None:
    """How the module already wraps its streams: "decorator", "wrapper", or None."""
    decorators = any(
        isinstance(d, ast.Name | ast.Attribute) and last_name(d) == _WRAPPER
        for d in module.decorators
    )
    wrappers = any(
        last_name(call.func) == _WRAPPER and call not in module.decorators
        for call, _ in module.calls
    )
    if decorators and not wrappers:
        return "decorator"
    return "wrapper" if wrappers else None


def _flask_import(module: Module) -> ast.ImportFrom | None:
    return next(
        (
            node
            for node in module.tree.body
            if isinstance(node, ast.ImportFrom) and node.module == "flask" and not node.level
        ),
        None,
    )


def import_name(module: Module, lines: Sequence[str]) -> tuple[str, tuple[Edit, ...]]:
    """The name ``stream_with_context`` is used by in *module*, and the edit that imports it
    when it is not yet: added to ``from flask import ...`` in sorted place (functions after
    classes, as isort orders them), or a line of its own after the last import."""
    for local, origin in module.imports.items():
        if origin == f"flask.{_WRAPPER}":
            return local, ()
    statement = _flask_import(module)
    path = module.path
    if statement is None:
        if module.imports.get("flask") == "flask":
            return f"flask.{_WRAPPER}", ()
        imports = [n for n in module.tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        line = end(lines, imports[-1])[0] + 1 if imports else 1
        return _WRAPPER, (insert_line(path, line, f"from flask import {_WRAPPER}\n"),)
    names = statement.names
    after = next((a for a in names if a.name[:1].islower() and a.name > _WRAPPER), None)
    if statement.lineno != statement.end_lineno:  # one name per line, in parentheses
        anchor = after or names[-1]
        line = start(lines, anchor)[0]
        text = f"{indentation(lines, line)}{_WRAPPER},\n"
        return _WRAPPER, (insert_line(path, line if after else line + 1, text),)
    if after is not None:
        position = start(lines, after)
        return _WRAPPER, (Edit(path, position, position, f"{_WRAPPER}, "),)
    position = end(lines, names[-1])
    return _WRAPPER, (Edit(path, position, position, f", {_WRAPPER}"),)


def wrap_stream(site: StreamSite, stream: Stream) -> tuple[Edit, ...]:
    """FS101: ``@stream_with_context`` on a generator view or on a generator defined in the
    view (when the module does not use the wrapper style), else
    ``stream_with_context(...)`` around the streamed body."""
    module = site.module
    lines = source(module.path)
    if not lines:
        return ()
    name, imported = import_name(module, lines)
    generator = stream.node
    own_generator = (
        isinstance(generator, ast.FunctionDef)
        and stream.module is module
        and not generator.decorator_list
        and module.owner.get(generator) is site.function
    )
    if isinstance(generator, ast.FunctionDef) and generator is site.function:
        line = generator.lineno  # under the route decorators: the view itself is wrapped
        return (insert_line(module.path, line, f"{indentation(lines, line)}@{name}\n"), *imported)
    if own_generator and _style(module) != "wrapper":
        assert isinstance(generator, ast.FunctionDef)
        line = generator.lineno
        return (insert_line(module.path, line, f"{indentation(lines, line)}@{name}\n"), *imported)
    if not isinstance(site.node, ast.expr) or isinstance(site.node, ast.Starred):
        return ()
    begin, finish = start(lines, site.node), end(lines, site.node)
    text = f"{name}({text_of(lines, site.node)})"
    return (Edit(module.path, begin, finish, text), *imported)


def call_generator(project: Project, site: StreamSite) -> tuple[Edit, ...]:
    """FS102: ``generate`` becomes ``generate()`` when it needs no argument."""
    node = site.node
    target = node.args[0] if isinstance(node, ast.Call) and node.args else node
    if not isinstance(target, ast.Name | ast.Attribute):
        return ()
    found = project.resolve_function(site.module, site.function, target)
    if found is None or _required_arguments(found[1]):
        return ()
    lines = source(site.module.path)
    position = end(lines, target)
    return (Edit(site.module.path, position, position, "()"),)


def _required_arguments(function: Function) -> bool:
    arguments = function.args
    positional = [*arguments.posonlyargs, *arguments.args]
    keyword_only = [
        a
        for a, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
        if default is None
    ]
    return len(positional) > len(arguments.defaults) or bool(keyword_only)


def remove_header(header: Header) -> tuple[Edit, ...]:
    """FS120: the ``Connection`` (or ``Transfer-Encoding``) entry or statement removed."""
    module = header.module
    lines = source(module.path)
    node = header.node
    for mapping in module.of(ast.Dict):
        if any(key is node for key in mapping.keys):
            if any(key is None for key in mapping.keys):
                return ()  # **other headers: leave the literal as it is
            keys = [k for k in mapping.keys if k is not None]
            return _remove_item(module, lines, keys, mapping.values, keys.index(node))  # type: ignore[arg-type]
    sequences: list[ast.List | ast.Tuple] = [*module.of(ast.List), *module.of(ast.Tuple)]
    for sequence in sequences:
        for index, element in enumerate(sequence.elts):
            if isinstance(element, ast.Tuple | ast.List) and element.elts[:1] == [node]:
                return _remove_item(module, lines, sequence.elts, sequence.elts, index)
    statements: list[ast.Assign | ast.Expr] = [*module.of(ast.Assign), *module.of(ast.Expr)]
    for statement in statements:
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.value]
        if len(targets) == 1 and targets[0] is node:
            return delete_lines(module.path, lines, statement)
    return ()


def _remove_item(
    module: Module,
    lines: Sequence[str],
    firsts: Sequence[ast.AST],
    lasts: Sequence[ast.AST],
    index: int,
) -> tuple[Edit, ...]:
    """Remove item *index* of a literal (from *firsts*[i] to *lasts*[i]) and one comma."""
    path = module.path
    if len(firsts) == 1:
        return (Edit(path, start(lines, firsts[0]), end(lines, lasts[0]), ""),)
    if index < len(firsts) - 1:
        return (Edit(path, start(lines, firsts[index]), start(lines, firsts[index + 1]), ""),)
    return (Edit(path, end(lines, lasts[index - 1]), end(lines, lasts[index]), ""),)


def add_headers(site: StreamSite, missing: Sequence[str]) -> tuple[Edit, ...]:
    """FS121: the missing headers added to the ``Response(...)`` written at the site: into
    its ``headers={...}`` literal, or as that keyword when it has none."""
    call = site.sink
    if call is None or any(isinstance(a, ast.Starred) for a in call.args) or len(call.args) > 2:
        return ()
    module = site.module
    lines = source(module.path)
    path = module.path
    given = next((k for k in call.keywords if k.arg == "headers"), None)
    if any(k.arg is None for k in call.keywords):
        return ()
    if given is not None and not isinstance(given.value, ast.Dict):
        return ()
    literal_keys = (
        given.value.keys if given is not None and isinstance(given.value, ast.Dict) else []
    )
    strings = [*(k for k in literal_keys if k is not None), *call.args]
    strings += [k.value for k in call.keywords if isinstance(k.value, ast.Constant)]
    mark = quote(lines, strings)
    entries = [
        f"{mark}{name}{mark}: {mark}{value}{mark}"
        for name, value in (_HEADER_VALUES[m] for m in missing)
    ]
    if given is None:
        return (_append_argument(path, lines, call, f"headers={{{', '.join(entries)}}}"),)
    assert isinstance(given.value, ast.Dict)
    return _into_dict(path, lines, given.value, entries)


def _into_dict(
    path: Path, lines: Sequence[str], mapping: ast.Dict, entries: list[str]
) -> tuple[Edit, ...]:
    """*entries* (``"Name": "value"``) added at the end of the literal *mapping*."""
    if None in mapping.keys:
        return ()
    if not mapping.keys:
        return (
            Edit(path, start(lines, mapping), end(lines, mapping), "{" + ", ".join(entries) + "}"),
        )
    last = mapping.values[-1]
    finish = end(lines, last)
    if mapping.lineno != mapping.end_lineno:
        first_key = mapping.keys[-1]
        assert first_key is not None
        indent = indentation(lines, start(lines, first_key)[0])
        trailing = lines[finish[0] - 1][finish[1] :].lstrip().startswith(",")
        edits = [insert_line(path, finish[0] + 1, "".join(f"{indent}{e},\n" for e in entries))]
        if not trailing:
            edits.append(Edit(path, finish, finish, ","))
        return tuple(edits)
    return (Edit(path, finish, finish, "".join(f", {entry}" for entry in entries)),)


def _append_argument(path: Path, lines: Sequence[str], call: ast.Call, text: str) -> Edit:
    """*text* as the call's last argument, on a line of its own when the call spans lines
    with a trailing comma (as a formatter leaves it)."""
    arguments: list[ast.AST] = [*call.args, *call.keywords]
    last = arguments[-1]
    finish = end(lines, last)
    rest = lines[finish[0] - 1][finish[1] :]
    own_line = start(lines, last)[0] != call.lineno  # one argument a line
    indent = indentation(lines, start(lines, last)[0])
    if own_line and rest.lstrip().startswith(","):
        return insert_line(path, finish[0] + 1, f"{indent}{text},\n")
    if own_line:
        return Edit(path, finish, finish, f",\n{indent}{text}")
    return Edit(path, finish, finish, f", {text}")


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def move_session_read(site: StreamSite, stream: Stream, read: ast.AST) -> tuple[Edit, ...]:
    """FS111: ``session.get("key", ...)`` read in the view, before the generator, into a
    variable the generator then uses. Only for a generator defined in the view, a read with
    literal arguments, and a name free in both."""
    generator = stream.node
    module = site.module
    view = site.function
    if not (
        isinstance(generator, ast.FunctionDef)
        and view is not None
        and stream.module is module
        and module.owner.get(generator) is view
    ):
        return ()
    call = module_parent_call(module, read)
    if call is None or call.keywords or not call.args:
        return ()
    key = call.args[0]
    if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
        return ()
    if any(not isinstance(a, ast.Constant) for a in call.args):
        return ()
    used = {n.id for n in ast.walk(view) if isinstance(n, ast.Name)} | {
        a.arg for n in ast.walk(view) if isinstance(n, ast.FunctionDef) for a in n.args.args
    }
    name = next(
        (
            c
            for c in (key.value.lower(), f"session_{key.value.lower()}")
            if _IDENTIFIER.match(c) and c not in used
        ),
        None,
    )
    if name is None:
        return ()
    lines = source(module.path)
    line = (generator.decorator_list[0] if generator.decorator_list else generator).lineno
    read_text = text_of(lines, call)
    if "'" in read_text and '"' not in read_text and _prefers_double(lines):
        read_text = read_text.replace("'", '"')  # inside an f-string it had to differ
    return (
        insert_line(module.path, line, f"{indentation(lines, line)}{name} = {read_text}\n"),
        Edit(module.path, start(lines, call), end(lines, call), name),
    )


def _prefers_double(lines: Sequence[str]) -> bool:
    text = "".join(lines)
    return text.count('"') >= text.count("'")


def module_parent_call(module: Module, node: ast.AST) -> ast.Call | None:
    """The call ``session.get(...)`` whose function *node* (``session``) is part of."""
    for call, _ in module.calls:
        func = call.func
        if isinstance(func, ast.Attribute) and func.value is node and func.attr == "get":
            return call
    return None
