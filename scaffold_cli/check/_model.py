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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CONTEXT_NAMES = frozenset({"request", "session", "g", "current_app"})
_RESPONSE_FACTORIES = frozenset({"Response", "make_response"})
_ROUTE_METHODS = frozenset({"route", "get", "post", "put", "patch", "delete"})
_AFTER_REQUEST = frozenset({"after_request", "after_app_request"})
TEARDOWNS = frozenset({"teardown_request", "teardown_appcontext", "teardown_app_request"})
_HELPER_DEPTH = 3
_HEARTBEAT = re.compile(r"heartbeat", re.IGNORECASE)

Function = ast.FunctionDef | ast.AsyncFunctionDef


def _nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under *node*, not descending into nested function or class definitions."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield from _nodes(child)


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


@dataclass(eq=False)
class Module:
    """One parsed Python file and the names it imports."""

    path: Path
    tree: ast.Module = field(repr=False)
    is_test: bool = False  # a test module: what it configures is not the deployed app
    imports: dict[str, str] = field(default_factory=dict, repr=False)
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict, repr=False)
    constants: dict[str, ast.expr] = field(default_factory=dict, repr=False)
    # Function definitions by the function they are nested in (None: the module's top level).
    definitions: dict[Function | None, dict[str, Function]] = field(
        default_factory=dict, repr=False
    )
    nodes: list[ast.AST] = field(default_factory=list, repr=False)  # every node, walked once

    def __post_init__(self) -> None:
        self.nodes = list(ast.walk(self.tree))
        for node in self.nodes:
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
            if isinstance(node, ast.ImportFrom | ast.Import):
                self.imports.update(_imported(node))
        for statement in self.tree.body:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target, value = statement.targets[0], statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                target, value = statement.target, statement.value
            else:
                continue
            if isinstance(target, ast.Name):
                self.constants[target.id] = value
        for node in self.nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                owner = self.enclosing_function(node)
                if owner is not None or self.parents.get(node) is self.tree:
                    self.definitions.setdefault(owner, {}).setdefault(node.name, node)

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

    def enclosing_function(self, node: ast.AST) -> Function | None:
        parent = self.parents.get(node)
        while parent is not None and not isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef):
            parent = self.parents.get(parent)
        return parent

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


def is_generator(function: Function) -> bool:
    return any(isinstance(node, ast.Yield | ast.YieldFrom) for node in _nodes(function))


def function_nodes(function: Function) -> Iterator[ast.AST]:
    """The nodes of *function*'s own body (nested definitions excluded)."""
    for statement in function.body:
        yield statement
        if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield from _nodes(statement)


def all_function_nodes(function: Function) -> Iterator[ast.AST]:
    """Every node of *function*, nested definitions included."""
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

    def header(self, name: str) -> Header | None:
        return next((h for h in self.headers if h.name == name.lower()), None)


@dataclass(frozen=True)
class Route:
    """A URL rule of a view, e.g. ``/events/<int:id>``, with the view's module."""

    rule: str
    module: Module
    view: Function


class Project:
    """Every Python module found, and what the rules need to know about them."""

    def __init__(self, modules: list[Module]) -> None:
        self.modules = modules
        self.functions: dict[str, list[tuple[Module, Function]]] = {}
        for module in modules:
            for node in module.nodes:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.functions.setdefault(node.name, []).append((module, node))
        self.routes = self._routes()
        self.after_request = [(m, f) for m, f in self._hooks(_AFTER_REQUEST) if not is_generator(f)]
        self.teardowns = self._hooks(TEARDOWNS)
        self.helpers = self._sink_helpers()
        self.sites = self._sites()

    # ------------------------------------------------------------ lookups
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
            if self._decorated(f, names)
        ]
        for module in self.modules:
            for node in module.nodes:
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in names
                    and node.args
                    and isinstance(node.args[0], ast.Name)
                ):
                    hooks += [
                        (m, f)
                        for m, f in self.functions.get(node.args[0].id, [])
                        if m is module or len(self.functions[node.args[0].id]) == 1
                    ]
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
        candidates = [
            (m, f)
            for m, f in self.functions.get(name, [])
            if m.enclosing_function(f) is None and not _in_class(m, f)
        ]
        if isinstance(node, ast.Attribute):
            owner = last_name(node.value)
            narrowed = [(m, f) for m, f in candidates if m.path.stem == owner]
            candidates = narrowed or ([] if owner in ("self", "cls") else candidates)
        return candidates[0] if len(candidates) == 1 else None

    def wraps(self, module: Module, node: ast.AST) -> bool:
        return module.is_flask(node, "stream_with_context") is not None

    def decorated_with_context(self, module: Module, function: Function) -> bool:
        return any(self.wraps(module, d) for d in function.decorator_list)

    def reads_context(self, module: Module, function: Function) -> list[tuple[str, ast.AST]]:
        """Flask context names *function* reads directly, with where."""
        found = []
        for node in all_function_nodes(function):
            name = module.context_name(node)
            if name is not None:
                found.append((name, node))
        return found

    # ------------------------------------------------------------ routes
    def _routes(self) -> dict[Function, list[Route]]:
        prefixes = self._registered_prefixes()
        routes: dict[Function, list[Route]] = {}
        for module in self.modules:
            for node in module.nodes:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    for decorator in self._decorated(node, _ROUTE_METHODS):
                        if isinstance(decorator, ast.Call) and decorator.args:
                            rule = literal(decorator.args[0])
                            owner = decorator.func
                            assert isinstance(owner, ast.Attribute)
                            if isinstance(rule, str):
                                prefix = self._prefix(module, owner.value, prefixes)
                                routes.setdefault(node, []).append(
                                    Route(prefix + rule, module, node)
                                )
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "add_url_rule"
                    and node.args
                ):
                    self._add_url_rule(module, node, prefixes, routes)
        return routes

    def _add_url_rule(
        self,
        module: Module,
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
        found = self.resolve_function(module, module.enclosing_function(node), view)
        if found is not None:
            prefix = self._prefix(module, node.func.value, prefixes)
            routes.setdefault(found[1], []).append(Route(prefix + rule, found[0], found[1]))

    def _registered_prefixes(self) -> dict[str, str]:
        """``register_blueprint(bp, url_prefix="/api")``: blueprint name to prefix."""
        prefixes: dict[str, str] = {}
        for module in self.modules:
            for node in module.nodes:
                if (
                    isinstance(node, ast.Call)
                    and last_name(node.func) == "register_blueprint"
                    and node.args
                ):
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

    def _sink_helpers(self) -> dict[Function, Helper]:
        """Functions that pass a parameter on to a streamed body, directly or through others.

        ``stream_response(chunks)`` calling ``Response(chunks, ...)`` is one; so is
        ``event_stream(source)`` that wraps *source* in a generator and hands that to
        ``stream_response``. A few rounds find helpers of helpers.
        """
        helpers: dict[Function, Helper] = {}
        for _ in range(_HELPER_DEPTH):
            found = False
            for entries in self.functions.values():
                for module, function in entries:
                    if function not in helpers and (
                        helper := self._helper(module, function, helpers)
                    ):
                        helpers[function] = helper
                        found = True
            if not found:
                break
        return helpers

    def _helper(
        self, module: Module, function: Function, helpers: dict[Function, Helper]
    ) -> Helper | None:
        names = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        if not names:
            return None
        for node in function_nodes(function):
            if not isinstance(node, ast.Call):
                continue
            inner: Helper | None = None
            body = self._response_call(module, node)
            if body is None:
                target = self.resolve_function(module, function, node.func)
                if target is None or target[1] not in helpers or target[1] is function:
                    continue
                inner = helpers[target[1]]
                body = _argument(node, inner.index, inner.name)
            name = _derived_from(function, body, names)
            if name is None:
                continue
            chain = ((module, function), *(inner.chain if inner else ()))
            sink = inner.sink if inner else node
            sink_module = inner.sink_module if inner else module
            return Helper(module, names.index(name), name, node, sink, sink_module, chain)
        return None

    def _sites(self) -> list[StreamSite]:
        sites: list[StreamSite] = []
        for entries in self.functions.values():
            for module, function in entries:
                sites += self._sites_in(module, function)
        return sites

    def _sites_in(self, module: Module, function: Function) -> list[StreamSite]:
        sites = []
        own = self.helpers.get(function)
        for node in function_nodes(function):
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
            if isinstance(stream, NotCalled):
                sites.append(StreamSite(module, function, stream.node, None, [], None, []))
                continue
            if stream is None:
                continue
            headers, mimetype = self._headers(module, function, node, sink, helper)
            views = self._views_of(function)
            sites.append(StreamSite(module, function, body, stream, headers, mimetype, views))
        return sites

    def _views_of(self, function: Function) -> list[Function]:
        if function in self.routes:
            return [function]
        return [
            view
            for view in self.routes
            if any(
                isinstance(n, ast.Call) and last_name(n.func) == function.name
                for n in function_nodes(view)
            )
        ]

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
        value = _assigned(scope, node)
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
            if target is not None and is_generator(target[1]):
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
            return None
        defined_in, function = target
        if is_generator(function):
            wrapped = self.decorated_with_context(defined_in, function)
            return Stream(defined_in, function, wrapped=wrapped, args=list(node.args))
        if depth == 0 and function not in self.helpers:
            for statement in function_nodes(function):
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
            source = _assigned(scope, source)
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
            headers += _header_mutations(place_module, place)
        content_type = next((h for h in headers if h.name == "content-type"), None)
        if mimetype is None and content_type is not None:
            mimetype = content_type.value
        return headers, mimetype

    # ------------------------------------------------------------ settings
    @property
    def app_modules(self) -> list[Module]:
        """The modules that configure the app itself: every one but the tests."""
        return [module for module in self.modules if not module.is_test]

    def heartbeat(self) -> float | None:
        """The longest heartbeat interval the app configures, in seconds, if one is found.

        Found by name: a config key, keyword or constant with "heartbeat" in it, set to a
        number (taken as milliseconds when the name ends in ``_MS``). Test modules do not
        count: what they set is for the apps they test, not for the deployed one.
        """
        found: list[float] = []
        for module in self.app_modules:
            for name, value in _named_values(module):
                number = literal(value)
                if _HEARTBEAT.search(name) and isinstance(number, int | float):
                    if isinstance(number, bool):
                        continue
                    found.append(number / 1000 if name.upper().endswith("_MS") else number)
        return max(found) if found else None

    def setting_false(self, name: str) -> bool:
        """Whether some module, tests aside, sets config key *name* to False."""
        return any(
            key == name and literal(value) is False
            for module in self.app_modules
            for key, value in _named_values(module)
        )


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _derived_from(function: Function, body: ast.expr | None, names: list[str]) -> str | None:
    """The parameter of *function* that *body* is, or is made from (``gen(iter(p))``)."""
    if body is None:
        return None
    if isinstance(body, ast.Name) and body.id in names:
        return body.id
    value = _assigned(function, body) if isinstance(body, ast.Name) else body
    if not isinstance(value, ast.Call):
        return None
    for argument in (*value.args, *(k.value for k in value.keywords)):  # the first one wins
        for node in ast.walk(argument):
            if isinstance(node, ast.Name) and node.id in names:
                return node.id
    return None


def _in_class(module: Module, function: Function) -> bool:
    return isinstance(module.parents.get(function), ast.ClassDef)


def _argument(call: ast.Call, index: int, name: str) -> ast.expr | None:
    if index < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args):
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == name), None)


def _assigned(scope: Function, name: ast.Name) -> ast.expr | None:
    """The value last assigned to *name* in *scope* before it is used."""
    value: ast.expr | None = None
    for node in function_nodes(scope):
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


def _header_mutations(module: Module, function: Function) -> list[Header]:
    """``x.headers["Name"] = v``, ``x.headers.set("Name", v)`` and the like in *function*."""
    headers: list[Header] = []
    for node in function_nodes(function):
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
    for node in module.nodes:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                name = _target_name(target)
                if name is not None:
                    yield name, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            if isinstance(node.target, ast.Name):
                yield node.target.id, node.value
        elif isinstance(node, ast.keyword) and node.arg is not None:
            yield node.arg, node.value
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                text = literal(key)
                if isinstance(text, str):
                    yield text, value
