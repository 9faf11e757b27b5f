"""What the checks know about a Flask project: its modules, its streams and their routes.

Everything is read with the standard library's `ast`; no project code is imported or run.
A *stream site* is a place where a view hands an iterable to Flask as a streamed body:
``Response(it, ...)`` (or ``make_response``, ``*.response_class``), a call of a project helper
that passes one of its parameters on to such a ``Response`` (one level deep), or a view that
returns a generator. The iterable is resolved, as far as the source shows, to the generator it
comes from and whether ``stream_with_context`` wraps it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

CONTEXT_NAMES = frozenset({"request", "session", "g", "current_app"})
# Flask functions that need an app or request context to run.
CONTEXT_FUNCTIONS = frozenset(
    {
        "render_template",
        "render_template_string",
        "stream_template",
        "stream_template_string",
        "url_for",
        "jsonify",
        "make_response",
        "flash",
        "get_flashed_messages",
        "send_file",
        "send_from_directory",
    }
)
# Flask-Login's user: None outside a request context.
_CURRENT_USER = "flask_login.current_user"
_RESPONSE_FACTORIES = frozenset({"Response", "make_response"})
_ROUTE_METHODS = frozenset({"route", "get", "post", "put", "patch", "delete"})
_AFTER_REQUEST = frozenset({"after_request", "after_app_request"})
TEARDOWNS = frozenset({"teardown_request", "teardown_appcontext", "teardown_app_request"})
_HELPER_DEPTH = 3
# Calls whose result is never a stream, whatever they are given (``json.dumps(data)``).
_NOT_STREAMS = frozenset(
    {
        "dumps",
        "str",
        "bytes",
        "repr",
        "len",
        "int",
        "float",
        "bool",
        "dict",
        "list",
        "tuple",
        "set",
        "format",
        "join",
        "encode",
        "decode",
        "jsonify",
        "render_template",
        "render_template_string",
        "gettext",
        "_",
    }
)
_HEARTBEAT = re.compile(r"heartbeat", re.IGNORECASE)

Function = ast.FunctionDef | ast.AsyncFunctionDef


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def last_name(node: ast.AST) -> str | None:
    """The final name of ``a.b.c`` or ``c``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def literal(node: ast.AST | None) -> object:
    """The value of a literal expression, or `NotImplemented` when it is not one."""
    if node is None:
        return NotImplemented
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return NotImplemented


Owner = Function | ast.ClassDef | None
_Node = TypeVar("_Node", bound=ast.AST)
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# Nodes that only say which operator or context: shared objects, nothing under them.
_TOKENS = frozenset(
    kind
    for base in (ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop)
    for kind in base.__subclasses__()
)


class Module:
    """One parsed Python file, walked once: its imports, constants, functions and calls.

    Every node is filed under its *owner*, the innermost function or class whose body holds
    it (None: the module's own statements); decorators, defaults and annotations belong to the
    scope that evaluates them. The rules read these lists instead of walking the tree again.
    """

    def __init__(self, path: Path, tree: ast.Module, *, is_test: bool = False) -> None:
        self.path = path
        self.tree = tree
        self.is_test = is_test  # a test module: what it configures is not the deployed app
        self.imports: dict[str, str] = {}
        self.constants: dict[str, ast.expr] = {}
        # Function definitions by the function they are nested in (None: the top level).
        self.definitions: dict[Function | None, dict[str, Function]] = {}
        self.own: dict[Owner, list[ast.AST]] = {None: []}
        self.owner: dict[Function | ast.ClassDef, Owner] = {}
        self.generators: set[Function] = set()
        self.decorators: set[ast.AST] = set()
        self.calls: list[tuple[ast.Call, Owner]] = []
        self.by_type: dict[type[ast.AST], list[ast.AST]] = {}
        # Every function definition, methods and nested ones included, in source order.
        self.functions: list[Function] = []
        self._walk(tree.body)
        for statement in tree.body:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target, value = statement.targets[0], statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                target, value = statement.target, statement.value
            else:
                continue
            if isinstance(target, ast.Name):
                self.constants[target.id] = value
        for function in self.functions:
            owner = self.owner[function]
            if owner is None or not isinstance(owner, ast.ClassDef):
                self.definitions.setdefault(owner, {}).setdefault(function.name, function)

    def _walk(self, statements: list[ast.stmt]) -> None:
        """File every node under *statements* (depth first, in source order) under its owner.

        The hottest loop of a check: one pass over every node of every parsed module."""
        stack: list[tuple[ast.AST, Owner]] = [(node, None) for node in reversed(statements)]
        own, by_type, calls = self.own, self.by_type, self.calls
        skipped = _TOKENS
        definitions = _DEFINITIONS
        call, yields, imports = ast.Call, (ast.Yield, ast.YieldFrom), (ast.Import, ast.ImportFrom)
        node_type, push, pop = ast.AST, stack.append, stack.pop
        while stack:
            node, owner = pop()
            own[owner].append(node)
            kind = node.__class__
            bucket = by_type.get(kind)
            if bucket is None:
                bucket = by_type[kind] = []
            bucket.append(node)
            if kind in definitions:
                stack += reversed(self._definition_parts(node, owner))  # type: ignore[arg-type]
                continue
            if kind is call:
                calls.append((node, owner))  # type: ignore[arg-type]
            elif kind in yields:
                if owner is not None and owner.__class__ is not ast.ClassDef:
                    self.generators.add(owner)  # type: ignore[arg-type]
            elif kind in imports:
                self.imports.update(_imported(node))  # type: ignore[arg-type]
            start = len(stack)
            for name in kind._fields:
                value = getattr(node, name, None)
                if value.__class__ is list:
                    for item in value:
                        if isinstance(item, node_type) and item.__class__ not in skipped:
                            push((item, owner))
                elif isinstance(value, node_type) and value.__class__ not in skipped:
                    push((value, owner))
            stack[start:] = stack[start:][::-1]  # the first child is popped first

    def _definition_parts(
        self, node: Function | ast.ClassDef, owner: Owner
    ) -> list[tuple[ast.AST, Owner]]:
        """What a definition holds: decorators, defaults and bases belong to the enclosing
        scope, the body to the definition itself."""
        self.owner[node] = owner
        self.own[node] = []
        parts: list[tuple[ast.AST, Owner]] = []
        for decorator in node.decorator_list:
            self.decorators.add(decorator)
            parts.append((decorator, owner))
        if isinstance(node, ast.ClassDef):
            parts += ((base, owner) for base in (*node.bases, *node.keywords))
        else:
            self.functions.append(node)
            parts.append((node.args, owner))
            if node.returns is not None:
                parts.append((node.returns, owner))
        parts += ((statement, node) for statement in node.body)
        return parts

    def of(self, kind: type[_Node]) -> list[_Node]:
        """Every node of the type *kind* in the module."""
        return self.by_type.get(kind, [])  # type: ignore[return-value]

    def body(self, function: Function) -> list[ast.AST]:
        """The nodes of *function*'s own body, nested definitions not descended into."""
        return self.own.get(function, [])

    def is_generator(self, function: Function) -> bool:
        return function in self.generators

    def origin(self, node: ast.AST) -> str | None:
        """Where a name or attribute chain comes from: ``flask.request`` for ``request``."""
        name = dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        if head not in self.imports:
            return None
        source = self.imports[head]
        return f"{source}.{rest}" if rest else source

    def is_flask(self, node: ast.AST, *names: str) -> str | None:
        """The Flask name *node* refers to (among *names*), or None."""
        source = self.origin(node)
        if source is None:
            return None
        module, _, name = source.rpartition(".")
        if module == "flask" and name in names:
            return name
        return None

    def context_name(self, node: ast.AST) -> str | None:
        """``request``, ``session``, ``g`` or ``current_app`` when *node* is that Flask name."""
        if isinstance(node, ast.Name | ast.Attribute):
            return self.is_flask(node, *CONTEXT_NAMES)
        return None

    def context_use(self, node: ast.AST) -> str | None:
        """What in *node* needs a request or app context: a context name (``request``,
        ``current_user``) or a call of a Flask function that uses one (``url_for()``)."""
        if isinstance(node, ast.Call):
            name = self.is_flask(node.func, *CONTEXT_FUNCTIONS)
            return None if name is None else f"`{name}()`"
        if not isinstance(node, ast.Name | ast.Attribute):
            return None
        name = self.is_flask(node, *CONTEXT_NAMES)
        if name is None and self.origin(node) == _CURRENT_USER:
            name = "current_user"
        return None if name is None else f"`{name}`"

    def enclosing_function(self, node: Function | ast.ClassDef) -> Function | None:
        """The function a definition is nested in (through classes), or None."""
        owner = self.owner.get(node)
        while isinstance(owner, ast.ClassDef):
            owner = self.owner.get(owner)
        return owner

    def constant(self, node: ast.AST | None) -> object:
        """A literal, or a module-level name bound to one."""
        value = literal(node)
        if value is NotImplemented and isinstance(node, ast.Name) and node.id in self.constants:
            value = literal(self.constants[node.id])
        return value


def _imported(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
    """Local name and where it comes from: ``("request", "flask.request")``."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            top = alias.name.partition(".")[0]
            yield (alias.asname, alias.name) if alias.asname else (top, top)
        return
    prefix = "." * node.level + (node.module or "")
    for alias in node.names:
        yield alias.asname or alias.name, f"{prefix}.{alias.name}"


def all_function_nodes(function: Function) -> Iterator[ast.AST]:
    """Every node of *function*'s body, nested definitions included."""
    for statement in function.body:
        yield from ast.walk(statement)


@dataclass(eq=False)
class Stream:
    """The generator behind a streamed body, as far as it could be resolved."""

    module: Module
    node: Function | ast.GeneratorExp | ast.Call | None
    wrapped: bool
    args: list[ast.expr] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if isinstance(self.node, ast.Call):
            return "template"
        return "generator"


@dataclass(frozen=True, eq=False)
class NotCalled:
    """``stream_with_context(generate)``: a generator function wrapped but never called."""

    node: ast.AST
    name: str


@dataclass(frozen=True, eq=False)
class Header:
    """A header set on a streamed response: where, and its value when it is a literal."""

    module: Module
    node: ast.AST
    name: str
    value: str | None


@dataclass(frozen=True, eq=False)
class Helper:
    """A function that passes its parameter *name* (at *index*) on as a streamed body.

    *call* is where it passes it on; *sink* the ``Response(...)`` at the end of the *chain*
    of helpers (this one first), in *sink_module*.
    """

    module: Module
    index: int
    name: str
    call: ast.Call
    sink: ast.Call
    sink_module: Module
    chain: tuple[tuple[Module, Function], ...]


@dataclass(eq=False)
class StreamSite:
    """One place where a view hands a stream to Flask."""

    module: Module
    function: Function | None
    node: ast.AST
    stream: Stream | None
    headers: list[Header]
    mimetype: str | None
    views: list[Function]
    # The ``Response(...)`` call written at the site itself (not in a helper), if any.
    sink: ast.Call | None = None

    def header(self, name: str) -> Header | None:
        return next((h for h in self.headers if h.name == name.lower()), None)


@dataclass(frozen=True)
class Route:
    """A URL rule of a view, e.g. ``/events/<int:id>``, with the view's module."""

    rule: str
    module: Module
    view: Function


class Project:
    """Every Python module found, and what the rules need to know about them.

    Built from indexes made once: functions by name, calls by the name they call. Only the
    functions that take part in a stream (views, helpers, what they call) are looked into.
    """

    def __init__(self, modules: list[Module]) -> None:
        self.modules = modules
        # Modules read only for the settings in them (see `app_modules`).
        self.settings_modules: list[Module] = []
        self._settings_cache: tuple[int, dict[str, list[ast.expr]]] | None = None
        # Imported functions a stream's body calls that no parsed module defines.
        self.unresolved: set[str] = set()
        self.module_of: dict[Function, Module] = {}
        self.functions: dict[str, list[tuple[Module, Function]]] = {}
        self._top_level: dict[str, list[tuple[Module, Function]]] = {}
        self.calls_named: dict[str, list[tuple[Module, Owner, ast.Call]]] = {}
        for module in modules:
            for function in module.functions:
                self.module_of[function] = module
                self.functions.setdefault(function.name, []).append((module, function))
                if module.owner[function] is None:
                    self._top_level.setdefault(function.name, []).append((module, function))
            for call, owner in module.calls:
                name = last_name(call.func)
                if name is not None:
                    self.calls_named.setdefault(name, []).append((module, owner, call))
        self.routes = self._routes()
        self.after_request = [
            (m, f) for m, f in self._hooks(_AFTER_REQUEST) if not m.is_generator(f)
        ]
        self.teardowns = self._hooks(TEARDOWNS)
        self.helpers = self._sink_helpers()
        self.sites = self._sites()

    def stream_names(self) -> tuple[set[str], set[str]]:
        """The names of the functions that take part in a stream, as two sets: helpers and
        top-level generators (a module that calls one may make a stream), and the imported
        functions that make a stream's body or that the streams' generators call, which no
        parsed module defines (a module that defines one may make the stream or read the
        request). See `PythonSources.mentioning`."""
        called = {function.name for function in self.helpers}
        for module in self.modules:
            called.update(f.name for f in module.generators if module.owner[f] is None)
        defined = set(self.unresolved)
        for site in self.sites:
            stream = site.stream
            if stream is not None and isinstance(
                stream.node, ast.FunctionDef | ast.AsyncFunctionDef
            ):
                defined.update(self._imported_calls(stream.module, stream.node))
        return called, defined

    def _imported_calls(self, module: Module, function: Function) -> Iterator[str]:
        """The functions *function* calls that it imports (``name()`` or ``module.name()``)
        and that no parsed module defines."""
        for node in all_function_nodes(function):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            head = func.value if isinstance(func, ast.Attribute) else func
            if isinstance(head, ast.Name) and head.id in module.imports:
                name = last_name(func)
                if name is not None and name not in self.functions:
                    yield name

    # ------------------------------------------------------------ lookups
    def body(self, function: Function) -> list[ast.AST]:
        """The nodes of *function*'s own body (nested definitions not descended into)."""
        return self.module_of[function].body(function)

    def is_generator(self, function: Function) -> bool:
        return self.module_of[function].is_generator(function)

    def calls_of(self, *names: str) -> Iterator[tuple[Module, Owner, ast.Call]]:
        """Every call of a function or method with one of these (last) names."""
        for name in names:
            yield from self.calls_named.get(name, [])

    def _decorated(self, function: Function, names: frozenset[str]) -> list[ast.Call | ast.expr]:
        found: list[ast.Call | ast.expr] = []
        for decorator in function.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if last_name(target) in names and isinstance(target, ast.Attribute):
                found.append(decorator)
        return found

    def _hooks(self, names: frozenset[str]) -> list[tuple[Module, Function]]:
        hooks = [
            (m, f)
            for entries in self.functions.values()
            for m, f in entries
            if f.decorator_list and self._decorated(f, names)
        ]
        for module, _, node in self.calls_of(*names):
            if isinstance(node.func, ast.Attribute) and node.args:
                first = node.args[0]
                if isinstance(first, ast.Name):
                    entries = self.functions.get(first.id, [])
                    hooks += [(m, f) for m, f in entries if m is module or len(entries) == 1]
        return hooks

    def resolve_function(
        self, module: Module, scope: Function | None, node: ast.AST
    ) -> tuple[Module, Function] | None:
        """The definition a called name refers to: nested in *scope*, in *module*, or imported."""
        name = last_name(node)
        if name is None:
            return None
        if isinstance(node, ast.Name):
            current = scope
            while True:
                found = module.definitions.get(current, {}).get(name)
                if found is not None:
                    return module, found
                if current is None:
                    break
                current = module.enclosing_function(current)
            if name not in module.imports or module.imports[name].startswith(
                ("flask.", "werkzeug.")
            ):
                return None
        candidates = self._top_level.get(name, [])
        if isinstance(node, ast.Attribute):
            owner = last_name(node.value)
            narrowed = [(m, f) for m, f in candidates if m.path.stem == owner]
            candidates = narrowed or ([] if owner in ("self", "cls") else candidates)
        return candidates[0] if len(candidates) == 1 else None

    def wraps(self, module: Module, node: ast.AST) -> bool:
        return module.is_flask(node, "stream_with_context") is not None

    def decorated_with_context(self, module: Module, function: Function) -> bool:
        return any(self.wraps(module, d) for d in function.decorator_list)

    def context_use(self, module: Module, function: Function) -> str | None:
        """The first thing *function* uses that needs a request or app context, if any."""
        for node in all_function_nodes(function):
            name = module.context_use(node)
            if name is not None:
                return name
        return None

    # ------------------------------------------------------------ routes
    def _routes(self) -> dict[Function, list[Route]]:
        prefixes = self._registered_prefixes()
        routes: dict[Function, list[Route]] = {}
        for entries in self.functions.values():
            for module, function in entries:
                if not function.decorator_list:
                    continue
                for decorator in self._decorated(function, _ROUTE_METHODS):
                    if isinstance(decorator, ast.Call) and decorator.args:
                        rule = literal(decorator.args[0])
                        owner = decorator.func
                        assert isinstance(owner, ast.Attribute)
                        if isinstance(rule, str):
                            prefix = self._prefix(module, owner.value, prefixes)
                            routes.setdefault(function, []).append(
                                Route(prefix + rule, module, function)
                            )
        for module, scope, node in self.calls_of("add_url_rule"):
            if isinstance(node.func, ast.Attribute) and node.args:
                self._add_url_rule(module, _function_scope(module, scope), node, prefixes, routes)
        return routes

    def _add_url_rule(
        self,
        module: Module,
        scope: Function | None,
        node: ast.Call,
        prefixes: dict[str, str],
        routes: dict[Function, list[Route]],
    ) -> None:
        rule = literal(node.args[0])
        view = next((k.value for k in node.keywords if k.arg == "view_func"), None)
        if view is None and len(node.args) > 2:
            view = node.args[2]
        if not isinstance(rule, str) or view is None:
            return
        assert isinstance(node.func, ast.Attribute)
        found = self.resolve_function(module, scope, view)
        if found is not None:
            prefix = self._prefix(module, node.func.value, prefixes)
            routes.setdefault(found[1], []).append(Route(prefix + rule, found[0], found[1]))

    def _registered_prefixes(self) -> dict[str, str]:
        """``register_blueprint(bp, url_prefix="/api")``: blueprint name to prefix."""
        prefixes: dict[str, str] = {}
        for _, _, node in self.calls_of("register_blueprint"):
            if node.args:
                prefix = next(
                    (literal(k.value) for k in node.keywords if k.arg == "url_prefix"), None
                )
                name = dotted(node.args[0])
                if isinstance(prefix, str) and name is not None:
                    prefixes[name] = prefix.rstrip("/")
        return prefixes

    def _prefix(self, module: Module, owner: ast.AST, prefixes: dict[str, str]) -> str:
        name = last_name(owner)
        if name is None:
            return ""
        for qualified, prefix in prefixes.items():
            if qualified in (name, f"{module.path.stem}.{name}"):
                return prefix
        value = module.constants.get(name)
        if isinstance(value, ast.Call) and last_name(value.func) == "Blueprint":
            given = next((literal(k.value) for k in value.keywords if k.arg == "url_prefix"), "")
            if isinstance(given, str):
                return given.rstrip("/")
        return ""

    # ------------------------------------------------------------ sinks
    def _response_call(self, module: Module, node: ast.AST) -> ast.expr | None:
        """The body argument of ``Response(body, ...)`` and the like, or None."""
        if not isinstance(node, ast.Call):
            return None
        factory = module.is_flask(node.func, *_RESPONSE_FACTORIES)
        if factory is None and not (
            isinstance(node.func, ast.Attribute) and node.func.attr == "response_class"
        ):
            return None
        if node.args:
            return node.args[0]
        return next((k.value for k in node.keywords if k.arg == "response"), None)

    def _response_functions(self) -> set[Function]:
        """The functions that call ``Response(...)`` (or the like) themselves."""
        return {
            owner
            for module, owner, call in self.calls_of(*_RESPONSE_FACTORIES, "response_class")
            if isinstance(owner, ast.FunctionDef | ast.AsyncFunctionDef)
            and self._response_call(module, call) is not None
        }

    def _callers(self, functions: Iterable[Function]) -> set[Function]:
        """The functions that call one of *functions* by name (to be resolved by the caller)."""
        return {
            owner
            for _, owner, _ in self.calls_of(*{f.name for f in functions})
            if isinstance(owner, ast.FunctionDef | ast.AsyncFunctionDef)
        }

    def _sink_helpers(self) -> dict[Function, Helper]:
        """Functions that pass a parameter on to a streamed body, directly or through others.

        ``stream_response(chunks)`` calling ``Response(chunks, ...)`` is one; so is
        ``event_stream(source)`` that wraps *source* in a generator and hands that to
        ``stream_response``. A few rounds find helpers of helpers.
        """
        helpers: dict[Function, Helper] = {}
        candidates = self._response_functions()
        for _ in range(_HELPER_DEPTH):
            found: list[Function] = []
            for function in candidates:
                if function not in helpers and (
                    helper := self._helper(self.module_of[function], function, helpers)
                ):
                    helpers[function] = helper
                    found.append(function)
            if not found:
                break
            candidates = self._callers(found)
        return helpers

    def _helper(
        self, module: Module, function: Function, helpers: dict[Function, Helper]
    ) -> Helper | None:
        names = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        if not names:
            return None
        body = module.body(function)
        for node in body:
            if not isinstance(node, ast.Call):
                continue
            inner: Helper | None = None
            argument = self._response_call(module, node)
            if argument is None:
                target = self.resolve_function(module, function, node.func)
                if target is None or target[1] not in helpers or target[1] is function:
                    continue
                inner = helpers[target[1]]
                argument = _argument(node, inner.index, inner.name)
            name = _derived_from(body, argument, names)
            if name is None:
                continue
            chain = ((module, function), *(inner.chain if inner else ()))
            sink = inner.sink if inner else node
            sink_module = inner.sink_module if inner else module
            return Helper(module, names.index(name), name, node, sink, sink_module, chain)
        return None

    def _sites(self) -> list[StreamSite]:
        """Every stream site, in the functions that can hold one: those that call
        ``Response`` or a helper, and the views."""
        candidates = self._response_functions() | self._callers(self.helpers) | set(self.routes)
        sites: list[StreamSite] = []
        for function in sorted(candidates, key=self._position):
            sites += self._sites_in(self.module_of[function], function)
        return sites

    def _position(self, function: Function) -> tuple[str, int, int]:
        return (str(self.module_of[function].path), function.lineno, function.col_offset)

    def _sites_in(self, module: Module, function: Function) -> list[StreamSite]:
        sites = []
        own = self.helpers.get(function)
        if function in self.routes and module.is_generator(function):
            sites.append(self._generator_view(module, function))
        for node in module.body(function):
            body: ast.expr | None = None
            sink: ast.Call | None = None
            helper: Helper | None = None
            if (found := self._response_call(module, node)) is not None:
                body, sink = found, node  # type: ignore[assignment]
            elif isinstance(node, ast.Call):
                target = self.resolve_function(module, function, node.func)
                if target is not None and target[1] in self.helpers:
                    helper = self.helpers[target[1]]
                    sink = helper.sink
                    body = _argument(node, helper.index, helper.name)
            elif isinstance(node, ast.Return) and function in self.routes and node.value:
                value = node.value
                body = value.elts[0] if isinstance(value, ast.Tuple) and value.elts else value
            if body is None:
                continue
            if own is not None and node is own.call and _is_name(body, own.name):
                continue  # the helper passing its parameter on: judged where it is called
            stream = self.resolve_stream(module, function, body)
            if stream is None:
                continue
            headers, mimetype = self._headers(module, function, node, sink, helper)
            if isinstance(stream, NotCalled):
                own_sink = sink if helper is None else None
                sites.append(
                    StreamSite(module, function, stream.node, None, headers, mimetype, [], own_sink)
                )
                continue
            views = self._views_of(function)
            own_sink = sink if helper is None else None
            sites.append(
                StreamSite(module, function, body, stream, headers, mimetype, views, own_sink)
            )
        return sites

    def _generator_view(self, module: Module, view: Function) -> StreamSite:
        """A view that is a generator itself: Flask streams what it yields, after it returned."""
        stream = Stream(module, view, wrapped=self.decorated_with_context(module, view))
        headers: list[Header] = []
        for place_module, place in self.after_request:
            headers += _header_mutations(place_module, place_module.body(place))
        return StreamSite(module, view, view, stream, headers, None, [view])

    def _views_of(self, function: Function) -> list[Function]:
        if function in self.routes:
            return [function]
        return sorted(
            {view for view in self._callers([function]) if view in self.routes},
            key=self._position,
        )

    def resolve_stream(
        self, module: Module, scope: Function | None, node: ast.expr, depth: int = 0
    ) -> Stream | NotCalled | None:
        """What the streamed body *node* is, as far as the source shows."""
        if isinstance(node, ast.GeneratorExp):
            return Stream(module, node, wrapped=False)
        if isinstance(node, ast.Name) and scope is not None:
            return self._named(module, scope, node, depth)
        if not isinstance(node, ast.Call):
            return None
        if self.wraps(module, node.func):
            return self._wrapped(module, scope, node, depth)
        if self._template_generate(module, scope, node):
            return Stream(module, node, wrapped=False)
        return self._called(module, scope, node, depth)

    def _named(
        self, module: Module, scope: Function, node: ast.Name, depth: int
    ) -> Stream | NotCalled | None:
        """A name: a decorated generator function passed uncalled, or a variable's value."""
        target = self.resolve_function(module, scope, node)
        if target is not None:
            return NotCalled(node, node.id) if self.decorated_with_context(*target) else None
        value = _assigned(module.body(scope), node)
        return None if value is None else self.resolve_stream(module, scope, value, depth)

    def _wrapped(
        self, module: Module, scope: Function | None, node: ast.Call, depth: int
    ) -> Stream | NotCalled | None:
        """``stream_with_context(inner)``: a wrapped stream, or a function never called."""
        inner = node.args[0] if node.args else None
        if inner is None:
            return None
        if isinstance(inner, ast.Name | ast.Attribute):
            target = self.resolve_function(module, scope, inner)
            if target is not None and target[0].is_generator(target[1]):
                return NotCalled(node, target[1].name)
        stream = self.resolve_stream(module, scope, inner, depth)
        if isinstance(stream, Stream):
            stream.wrapped = True
            return stream
        return Stream(module, None, wrapped=True)

    def _called(
        self, module: Module, scope: Function | None, node: ast.Call, depth: int
    ) -> Stream | NotCalled | None:
        """``generate()``, or a helper that returns a stream it made (one level deep)."""
        target = self.resolve_function(module, scope, node.func)
        if target is None:
            name = last_name(node.func)
            head = node.func.value if isinstance(node.func, ast.Attribute) else node.func
            if name and isinstance(head, ast.Name) and head.id in module.imports:
                self.unresolved.add(name)  # defined in a module not parsed (yet)
            return None
        defined_in, function = target
        if defined_in.is_generator(function):
            wrapped = self.decorated_with_context(defined_in, function)
            return Stream(defined_in, function, wrapped=wrapped, args=list(node.args))
        if depth == 0 and function not in self.helpers:
            for statement in defined_in.body(function):
                if isinstance(statement, ast.Return) and statement.value is not None:
                    found = self.resolve_stream(defined_in, function, statement.value, 1)
                    if found is not None:
                        return found
        return None

    def _template_generate(self, module: Module, scope: Function | None, node: ast.Call) -> bool:
        """``env.get_template(name).generate(...)`` (or ``.stream(...)``): a Jinja stream that
        sees the request through the template context."""
        if not (isinstance(node.func, ast.Attribute) and node.func.attr in ("generate", "stream")):
            return False
        source: ast.AST | None = node.func.value
        if isinstance(source, ast.Name) and scope is not None:
            source = _assigned(module.body(scope), source)
        return isinstance(source, ast.Call) and last_name(source.func) in (
            "get_template",
            "from_string",
            "select_template",
        )

    # ------------------------------------------------------------ headers
    def _headers(
        self,
        module: Module,
        function: Function,
        node: ast.AST,
        sink: ast.Call | None,
        helper: Helper | None,
    ) -> tuple[list[Header], str | None]:
        headers: list[Header] = []
        mimetype: str | None = None
        places: list[tuple[Module, Function]] = [(module, function)]
        sink_module = module
        if helper is not None:
            places += helper.chain
            sink_module = helper.sink_module
        if sink is not None:
            for keyword in sink.keywords:
                if keyword.arg in ("mimetype", "content_type"):
                    value = sink_module.constant(keyword.value)
                    mimetype = value if isinstance(value, str) else None
                elif keyword.arg == "headers":
                    headers += _header_literal(sink_module, keyword.value)
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
            for element in node.value.elts[1:]:
                headers += _header_literal(module, element)
        places += self.after_request
        for place_module, place in places:
            headers += _header_mutations(place_module, place_module.body(place))
        content_type = next((h for h in headers if h.name == "content-type"), None)
        if mimetype is None and content_type is not None:
            mimetype = content_type.value
        return headers, mimetype

    # ------------------------------------------------------------ settings
    @property
    def app_modules(self) -> list[Module]:
        """The modules that configure the app itself: every one but the tests."""
        return [m for m in (*self.modules, *self.settings_modules) if not m.is_test]

    def heartbeat(self) -> float | None:
        """The longest heartbeat interval the app configures, in seconds, if one is found.

        Found by name: a config key, keyword or constant with "heartbeat" in it, set to a
        number (taken as milliseconds when the name ends in ``_MS``). Test modules do not
        count: what they set is for the apps they test, not for the deployed one.
        """
        found: list[float] = []
        for name, values in self._named_values().items():
            if not _HEARTBEAT.search(name):
                continue
            for value in values:
                number = literal(value)
                if isinstance(number, int | float) and not isinstance(number, bool):
                    found.append(number / 1000 if name.upper().endswith("_MS") else number)
        return max(found) if found else None

    def setting(self, name: str) -> list[object]:
        """Every value some module, tests aside, gives config key *name* (`NotImplemented`
        for a value that is not a literal)."""
        return [literal(value) for value in self._named_values().get(name, [])]

    def _named_values(self) -> dict[str, list[ast.expr]]:
        """Every value given a name in the app's modules (see `_named_values`), by name."""
        key = len(self.settings_modules)
        if self._settings_cache is None or self._settings_cache[0] != key:
            named: dict[str, list[ast.expr]] = {}
            for module in self.app_modules:
                for name, value in _named_values(module):
                    named.setdefault(name, []).append(value)
            self._settings_cache = (key, named)
        return self._settings_cache[1]


def _function_scope(module: Module, owner: Owner) -> Function | None:
    """The function *owner* is, or is nested in (a class body's scope is its function's)."""
    if isinstance(owner, ast.ClassDef):
        return module.enclosing_function(owner)
    return owner


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _derived_from(scope: list[ast.AST], body: ast.expr | None, names: list[str]) -> str | None:
    """The parameter (among *names*) that *body* is, or is made from (``gen(iter(p))``), in
    the function whose own nodes are *scope*."""
    if body is None:
        return None
    if isinstance(body, ast.Name) and body.id in names:
        return body.id
    value = _assigned(scope, body) if isinstance(body, ast.Name) else body
    if not isinstance(value, ast.Call) or last_name(value.func) in _NOT_STREAMS:
        return None
    for argument in (*value.args, *(k.value for k in value.keywords)):  # the first one wins
        for node in ast.walk(argument):
            if isinstance(node, ast.Name) and node.id in names:
                return node.id
    return None


def _argument(call: ast.Call, index: int, name: str) -> ast.expr | None:
    if index < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args):
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == name), None)


def _assigned(scope: list[ast.AST], name: ast.Name) -> ast.expr | None:
    """The value last assigned to *name* before it is used, in a function's own nodes."""
    value: ast.expr | None = None
    for node in scope:
        if isinstance(node, ast.Assign) and getattr(node, "lineno", 0) <= name.lineno:
            if any(isinstance(t, ast.Name) and t.id == name.id for t in node.targets):
                value = node.value
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name.id
            and node.value is not None
        ):
            value = node.value
    return value


def _header_literal(module: Module, node: ast.AST) -> list[Header]:
    """Headers in a literal ``{"Name": "value"}``, ``[("Name", "value")]`` or a constant."""
    if isinstance(node, ast.Name) and node.id in module.constants:
        node = module.constants[node.id]
    pairs: list[tuple[ast.AST, ast.AST | None]] = []
    if isinstance(node, ast.Dict):
        pairs = [(k, v) for k, v in zip(node.keys, node.values, strict=True) if k is not None]
    elif isinstance(node, ast.List | ast.Tuple):
        pairs = [
            (e.elts[0], e.elts[1])
            for e in node.elts
            if isinstance(e, ast.Tuple | ast.List) and len(e.elts) == 2
        ]
    headers = []
    for key, value in pairs:
        name = literal(key)
        if isinstance(name, str):
            text = literal(value)
            headers.append(
                Header(module, key, name.lower(), text if isinstance(text, str) else None)
            )
    return headers


def _header_mutations(module: Module, nodes: list[ast.AST]) -> list[Header]:
    """``x.headers["Name"] = v``, ``x.headers.set("Name", v)`` and the like among *nodes*
    (a function's own)."""
    headers: list[Header] = []
    for node in nodes:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Attribute)
                    and target.value.attr == "headers"
                ):
                    name = literal(target.slice)
                    value = literal(node.value)
                    if isinstance(name, str):
                        headers.append(
                            Header(
                                module,
                                target,
                                name.lower(),
                                value if isinstance(value, str) else None,
                            )
                        )
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "headers"
        ):
            if node.func.attr in ("set", "add", "setdefault", "add_header") and node.args:
                name = literal(node.args[0])
                value = literal(node.args[1]) if len(node.args) > 1 else NotImplemented
                if isinstance(name, str):
                    headers.append(
                        Header(
                            module, node, name.lower(), value if isinstance(value, str) else None
                        )
                    )
            elif node.func.attr in ("update", "extend") and node.args:
                headers += _header_literal(module, node.args[0])
    return headers


def _target_name(target: ast.expr) -> str | None:
    """``NAME`` of ``NAME =``, ``x.NAME =`` or ``x["NAME"] =``."""
    if isinstance(target, ast.Subscript):
        key = literal(target.slice)
        return key if isinstance(key, str) else None
    return last_name(target)


def _named_values(module: Module) -> Iterator[tuple[str, ast.expr]]:
    """Every ``NAME = value``, ``NAME=value`` keyword, ``{"NAME": value}`` and
    ``x["NAME"] = value`` in *module*: how Flask settings are written."""
    for assign in module.of(ast.Assign):
        for target in assign.targets:
            name = _target_name(target)
            if name is not None:
                yield name, assign.value
    for annotated in module.of(ast.AnnAssign):
        if annotated.value is not None and isinstance(annotated.target, ast.Name):
            yield annotated.target.id, annotated.value
    for keyword in module.of(ast.keyword):
        if keyword.arg is not None:
            yield keyword.arg, keyword.value
    for mapping in module.of(ast.Dict):
        for key, value in zip(mapping.keys, mapping.values, strict=True):
            text = literal(key)
            if isinstance(text, str):
                yield text, value
