"""FS1xx: mistakes in the Flask code that streams (see docs/check.md for each rule)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import replace

from ._code_fixes import add_headers, call_generator, move_session_read, remove_header, wrap_stream
from ._findings import Finding, finding
from ._model import (
    Function,
    Module,
    Project,
    Stream,
    StreamSite,
    all_function_nodes,
    last_name,
    literal,
)

_SESSION_WRITERS = frozenset({"pop", "clear", "update", "setdefault", "popitem"})
_RESPONSE_ATTRIBUTES = frozenset({"status_code", "status", "mimetype", "content_type"})
_COOKIE_METHODS = frozenset({"set_cookie", "delete_cookie"})
_CLOSERS = frozenset({"close", "release", "remove", "disconnect", "shutdown", "dispose", "quit"})
_HEADER_METHODS = frozenset({"add", "set", "setdefault", "update", "extend", "add_header"})
_HOP_BY_HOP = ("connection", "content-length", "transfer-encoding")
_CANONICAL = {"connection": "Connection", "content-length": "Content-Length"}
_COMPRESSORS = ("gzip", "compress", "deflate", "brotli", "zstd")
# Flask-Compress's default COMPRESS_MIMETYPES (1.17): the types it compresses unless told.
FLASK_COMPRESS_MIMETYPES = frozenset(
    {
        "text/html",
        "text/css",
        "text/plain",
        "text/xml",
        "text/x-component",
        "text/javascript",
        "application/x-javascript",
        "application/javascript",
        "application/json",
        "application/manifest+json",
        "application/vnd.api+json",
        "application/xml",
        "application/xhtml+xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/vnd.ms-fontobject",
        "application/x-font-ttf",
        "application/x-font-opentype",
        "application/x-font-truetype",
        "image/svg+xml",
        "image/x-icon",
        "image/vnd.microsoft.icon",
        "font/ttf",
        "font/eot",
        "font/otf",
        "font/opentype",
    }
)
_REDIS_CLIENTS = frozenset(
    {"Redis", "StrictRedis", "from_url", "ConnectionPool", "BlockingConnectionPool"}
)
# Blocking reads: command name to (argument that holds the wait, its unit in seconds).
_BLOCKING_READS = {
    "xread": ("block", 0.001),
    "xreadgroup": ("block", 0.001),
    "blpop": ("timeout", 1.0),
    "brpop": ("timeout", 1.0),
    "brpoplpush": ("timeout", 1.0),
    "blmove": ("timeout", 1.0),
    "bzpopmin": ("timeout", 1.0),
    "bzpopmax": ("timeout", 1.0),
}
REDIS_DEFAULT_SOCKET_TIMEOUT = 5.0
# What a streamed generator may wait on for ever: a queue (made by any callable named
# *Queue: queue, gevent, multiprocessing), or what a listener hands out (`announcer.listen()`
# returning a queue, redis-py's `pubsub.listen()`).
_QUEUE_MAKER = "Queue"
_LISTENER = "listen"


def _at(module: Module, node: ast.AST, code: str, **details: object) -> Finding:
    return finding(
        code,
        module.path,
        getattr(node, "lineno", 1),
        getattr(node, "col_offset", 0) + 1,
        **details,
    )


def check_code(project: Project) -> Iterator[Finding]:
    """Every FS1xx finding in *project*."""
    closed = _closed_in_teardown(project)
    getters = _getters(project, closed) if closed else {}
    for site in project.sites:
        yield from _site_findings(project, site, closed, getters)
    yield from _outside_request(project)
    if project.sites:
        yield from _compression(project)
    yield from _redis(project)


def _body_nodes(stream: Stream) -> Iterator[ast.AST]:
    if isinstance(stream.node, ast.FunctionDef | ast.AsyncFunctionDef):
        yield from all_function_nodes(stream.node)
    elif isinstance(stream.node, ast.GeneratorExp):
        yield from ast.walk(stream.node)


def _site_findings(
    project: Project, site: StreamSite, closed: set[str], getters: dict[str, str]
) -> Iterator[Finding]:
    for header in site.headers:
        if header.name in _HOP_BY_HOP:
            name = _CANONICAL.get(header.name, "Transfer-Encoding")
            found = _at(header.module, header.node, "FS120", header=name)
            # Content-Length may be what the code means to send: its removal is not mechanical.
            fix = remove_header(header) if header.name != "content-length" else ()
            yield replace(found, fix=fix)
    if site.mimetype is not None and site.mimetype.startswith("text/event-stream"):
        missing = [
            (name, text)
            for name, text in (
                ("x-accel-buffering", "X-Accel-Buffering: no"),
                ("cache-control", "Cache-Control: no-cache"),
            )
            if site.header(name) is None
        ]
        if missing:
            found = _at(
                site.module, site.node, "FS121", missing=" and ".join(t for _, t in missing)
            )
            yield replace(found, fix=add_headers(site, [name for name, _ in missing]))
    stream = site.stream
    if stream is None:
        if isinstance(site.node, ast.Call | ast.Name):
            name = _not_called_name(project, site)
            found = _at(site.module, site.node, "FS102", name=name)
            yield replace(found, fix=call_generator(project, site))
        return
    if not stream.wrapped:
        used = _context_use(project, stream)
        if used is not None:
            found = _at(site.module, site.node, "FS101", name=used)
            yield replace(found, fix=wrap_stream(site, stream))
    yield from _session(project, site, stream)
    yield from _response_changes(project, site, stream)
    yield from _silent_waits(stream)
    if closed:
        yield from _teardown_resources(project, site, stream, closed, getters)


def _silent_waits(stream: Stream) -> Iterator[Finding]:
    """FS160: the generator blocks with no timeout, on ``get()`` of a queue it made (or the
    module made, or a ``...listen()`` call returned), or iterating ``pubsub.listen()``."""
    if not isinstance(stream.node, ast.FunctionDef | ast.AsyncFunctionDef):
        return
    module = stream.module
    statements = [*module.tree.body, *all_function_nodes(stream.node)]
    queues = {
        target.id
        for node in statements
        if isinstance(node, ast.Assign) and _makes_queue(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    # A generator that looks before it takes (`if not q.empty(): q.get()`) polls instead.
    queues -= {
        node.func.value.id
        for node in _body_nodes(stream)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("empty", "qsize")
        and isinstance(node.func.value, ast.Name)
    }
    for node in _body_nodes(stream):
        if isinstance(node, ast.For | ast.AsyncFor) and _is_listener(node.iter):
            yield _at(module, node.iter, "FS160", call=ast.unparse(node.iter))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in queues
            and _waits_forever(node)
        ):
            yield _at(module, node, "FS160", call=ast.unparse(node))


def _makes_queue(value: ast.AST) -> bool:
    if not isinstance(value, ast.Call):
        return False
    name = last_name(value.func) or ""
    return name.endswith(_QUEUE_MAKER) or name.endswith(_LISTENER)


def _is_listener(value: ast.AST) -> bool:
    """``x.listen()``: redis-py's pub/sub messages, waited for without end."""
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == _LISTENER
        and not value.args
        and not value.keywords
    )


def _waits_forever(call: ast.Call) -> bool:
    """``q.get()``, ``q.get(True)``, ``q.get(block=True)``: a queue's get with no timeout."""
    assert isinstance(call.func, ast.Attribute)
    if call.func.attr != "get" or len(call.args) > 1:
        return False
    keywords = {keyword.arg: keyword.value for keyword in call.keywords}
    if "timeout" in keywords or set(keywords) - {"block"}:
        return False
    block = call.args[0] if call.args else keywords.get("block")
    return block is None or literal(block) is True


def _not_called_name(project: Project, site: StreamSite) -> str:
    node = site.node
    if isinstance(node, ast.Name):
        return node.id
    assert isinstance(node, ast.Call)
    return last_name(node.args[0]) or "generate"


def _context_use(project: Project, stream: Stream) -> str | None:
    """The first thing the generator uses that needs the request's context (a context name
    or a function such as ``url_for``), directly or in a function it calls."""
    if stream.kind == "template":
        return "`request`, `session` or `g` through the template context"
    for node in _body_nodes(stream):
        name = stream.module.context_use(node)
        if name is not None:
            return name
    scope = stream.node if isinstance(stream.node, ast.FunctionDef | ast.AsyncFunctionDef) else None
    for node in _body_nodes(stream):
        if isinstance(node, ast.Call):
            target = project.resolve_function(stream.module, scope, node.func)
            if target is not None and target[1] is not stream.node:
                used = project.context_use(*target)
                if used is not None:
                    return f"{used} (in `{target[1].name}()`)"
    return None


def _session(project: Project, site: StreamSite, stream: Stream) -> Iterator[Finding]:
    module = stream.module
    read: ast.AST | None = None
    writes = False
    for node in _body_nodes(stream):
        how = _session_write(module, node)
        if how is not None:
            writes = True
            yield _at(module, node, "FS110", how=how)
        elif read is None and module.context_name(node) == "session":
            read = node
    if read is None:
        return
    views = [site.function] if site.function is not None else []
    views += site.views
    generator = stream.node
    for view in views:
        if view is generator:
            continue  # a view that is the generator: everything in it runs while streaming
        for node in project.body(view):
            if site.module.context_name(node) == "session":
                return
    fix = () if writes else move_session_read(site, stream, read)
    yield replace(_at(module, read, "FS111"), fix=fix)


def _session_write(module: Module, node: ast.AST) -> str | None:
    def is_session(target: ast.AST) -> bool:
        return module.context_name(target) == "session"

    if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
        targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript) and is_session(target.value):
                return "del session[...]" if isinstance(node, ast.Delete) else "session[...] ="
            if isinstance(target, ast.Attribute) and is_session(target.value):
                return f"session.{target.attr} ="
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _SESSION_WRITERS
        and is_session(node.func.value)
    ):
        return f"session.{node.func.attr}()"
    return None


def _response_names(project: Project, site: StreamSite) -> set[str]:
    """Names that hold the streamed response: bound in the view to ``Response(...)``, to
    ``make_response(...)`` or to a streaming helper's result, and the usual ``response``."""
    names = {"response", "resp"}
    for function in {site.function, *site.views} - {None}:
        assert function is not None
        for node in project.body(function):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                callee = last_name(node.value.func) or ""
                target = project.resolve_function(site.module, function, node.value.func)
                if callee in ("Response", "make_response", "response_class") or (
                    target is not None and target[1] in project.helpers
                ):
                    names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _response_changes(project: Project, site: StreamSite, stream: Stream) -> Iterator[Finding]:
    """Headers, cookies or status set on the response object while it streams."""
    module = stream.module
    names = _response_names(project, site)

    def is_response(node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id in names

    for node in _body_nodes(stream):
        what: str | None = None
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Attribute)
                    and target.value.attr == "headers"
                    and is_response(target.value.value)
                ):
                    what = "headers[...]"
                elif (
                    isinstance(target, ast.Attribute)
                    and target.attr in _RESPONSE_ATTRIBUTES
                    and is_response(target.value)
                ):
                    what = target.attr
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            if node.func.attr in _COOKIE_METHODS and is_response(receiver):
                what = f"{node.func.attr}()"
            elif (
                node.func.attr in _HEADER_METHODS
                and isinstance(receiver, ast.Attribute)
                and receiver.attr == "headers"
                and is_response(receiver.value)
            ):
                what = f"headers.{node.func.attr}()"
        if what is not None:
            yield _at(module, node, "FS112", what=what)


# ------------------------------------------------------------------ teardown resources
def _closed_in_teardown(project: Project) -> set[str]:
    """Names of the ``g`` attributes a teardown function closes.

    ``g.db.close()``, or ``db = g.pop("db", None)`` (``g.get``, ``getattr(g, "db")``,
    ``g.db``) and then ``db.close()`` (or ``release``, ``remove``, ``disconnect``...).
    """
    names: set[str] = set()
    for module, function in project.teardowns:
        taken: dict[str, str] = {}  # local variable -> g attribute
        for node in all_function_nodes(function):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                key = _g_attribute(module, node.value)
                if key is not None and isinstance(node.targets[0], ast.Name):
                    taken[node.targets[0].id] = key
        for node in all_function_nodes(function):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _CLOSERS
            ):
                continue
            receiver = node.func.value
            key = _g_attribute(module, receiver)
            if key is None and isinstance(receiver, ast.Name):
                key = taken.get(receiver.id)
            if key is not None:
                names.add(key)
    return names


def _g_attribute(module: Module, node: ast.AST) -> str | None:
    """``"db"`` for ``g.db``, ``g.pop("db", ...)``, ``g.get("db")``, ``getattr(g, "db", ...)``."""
    if isinstance(node, ast.Attribute) and module.context_name(node.value) == "g":
        return node.attr
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    if (
        isinstance(func, ast.Attribute)
        and func.attr in ("pop", "get", "setdefault")
        and module.context_name(func.value) == "g"
    ):
        key = literal(node.args[0])
    elif last_name(func) == "getattr" and len(node.args) > 1:
        key = literal(node.args[1]) if module.context_name(node.args[0]) == "g" else None
    else:
        return None
    return key if isinstance(key, str) else None


def _getters(project: Project, closed: set[str]) -> dict[str, str]:
    """Functions that open or return such a ``g`` attribute: function name to attribute."""
    getters: dict[str, str] = {}
    teardowns = {function for _, function in project.teardowns}
    for entries in project.functions.values():
        for module, function in entries:
            if function in teardowns:
                continue
            for node in module.body(function):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr in closed
                    and module.context_name(node.value) == "g"
                ):
                    getters[function.name] = node.attr
    return getters


def _teardown_resources(
    project: Project, site: StreamSite, stream: Stream, closed: set[str], getters: dict[str, str]
) -> Iterator[Finding]:
    module = stream.module
    generator = stream.node
    reported: set[str] = set()

    def uses(node: ast.AST, in_module: Module) -> str | None:
        if (
            isinstance(node, ast.Attribute)
            and node.attr in closed
            and in_module.context_name(node.value) == "g"
        ):
            return f"g.{node.attr}"
        if isinstance(node, ast.Call) and last_name(node.func) in getters:
            return f"{last_name(node.func)}()"
        return None

    # Inside the generator: g.db, get_db(), or a name the view bound to one of them.
    view_bound: dict[str, str] = {}
    if site.function is not None and site.function is not generator:
        for node in project.body(site.function):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                used = uses(node.value, site.module)
                if isinstance(target, ast.Name) and used is not None:
                    view_bound[target.id] = used
    for node in _body_nodes(stream):
        name = uses(node, module)
        if (
            name is None
            and isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and node.id in view_bound
            and isinstance(generator, ast.FunctionDef | ast.AsyncFunctionDef)
            and _is_free(project, generator, node.id)
        ):
            name = node.id
        if name is not None and name not in reported:
            reported.add(name)
            yield _at(module, node, "FS130", name=name)
    # Passed in as an argument: Response(generate(get_db())).
    for argument in stream.args:
        name = uses(argument, site.module)
        if name is None and isinstance(argument, ast.Name):
            name = argument.id if argument.id in view_bound else None
        if name is not None and name not in reported:
            reported.add(name)
            yield _at(site.module, argument, "FS130", name=name)


def _is_free(project: Project, function: Function, name: str) -> bool:
    """Whether *name* is neither a parameter of nor assigned in *function*."""
    arguments = function.args
    params = {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}
    if name in params:
        return False
    return not any(
        isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store)
        for node in project.body(function)
    )


# ------------------------------------------------------------------ outside a request
def _outside_request(project: Project) -> Iterator[Finding]:
    """stream_with_context called (or a decorated generator called) where no request is."""
    threads = _thread_targets(project)
    for module in project.modules:
        decorated = {
            function.name
            for function in module.functions
            if function.decorator_list and project.decorated_with_context(module, function)
        }
        for node, owner in module.calls:
            wraps = project.wraps(module, node.func)
            calls_decorated = isinstance(node.func, ast.Name) and node.func.id in decorated
            if not (wraps or calls_decorated) or node in module.decorators:
                continue  # a decorator: applied at definition, captures nothing yet
            function = (
                module.enclosing_function(owner) if isinstance(owner, ast.ClassDef) else owner
            )
            where: str | None = None
            if function is None:
                where = "at module level"
            elif function.name in threads:
                where = f"in `{function.name}`, which runs in a thread"
            elif any(last_name(_decorator_target(d)) == "command" for d in function.decorator_list):
                where = f"in the command `{function.name}`"
            if where is not None:
                yield _at(module, node, "FS103", where=where)


def _decorator_target(decorator: ast.expr) -> ast.expr:
    return decorator.func if isinstance(decorator, ast.Call) else decorator


def _thread_targets(project: Project) -> set[str]:
    names: set[str] = set()
    for _, _, node in project.calls_of("Thread", "Timer", "submit"):
        candidates = [k.value for k in node.keywords if k.arg in ("target", "function")]
        if last_name(node.func) == "submit" and node.args:
            candidates.append(node.args[0])
        names.update(n.id for n in candidates if isinstance(n, ast.Name))
    return names


# ------------------------------------------------------------------ compression
def _compression(project: Project) -> Iterator[Finding]:
    streamed = _compressed_stream_type(project)
    names = [n for n in project.calls_named if any(w in n.lower() for w in _COMPRESSORS)]
    for module, _, node in project.calls_of(*names):
        origin = module.origin(node.func) or ""
        if origin.startswith("flask_compress."):
            if origin.endswith(".Compress") and streamed is not None:
                yield _at(module, node, "FS140", mimetype=streamed)
        elif _wraps_app(module, node):
            yield _at(module, node, "FS141", name=last_name(node.func))


def _wraps_app(module: Module, call: ast.Call) -> bool:
    """``Gzip(app.wsgi_app)`` or ``app.wsgi_app = Gzip(...)``."""
    if any(last_name(argument) == "wsgi_app" for argument in call.args):
        return True
    return any(
        assign.value is call and any(last_name(t) == "wsgi_app" for t in assign.targets)
        for assign in module.of(ast.Assign)
    )


def _compressed_stream_type(project: Project) -> str | None:
    """The type of a stream Flask-Compress would compress, if the settings tell one.

    Flask-Compress compresses a streamed response when ``COMPRESS_STREAMS`` is on (the
    default) and its type is in ``COMPRESS_MIMETYPES`` (``text/event-stream`` and
    ``application/x-ndjson`` are not by default); with ``COMPRESS_REGISTER`` off, only in the
    views decorated with ``compressed()``. A setting that is not a literal is not judged.
    """
    streams = project.setting("COMPRESS_STREAMS")
    if any(value is not True for value in streams):
        return None
    listed = project.setting("COMPRESS_MIMETYPES")
    if any(not isinstance(value, list | tuple | set) for value in listed):
        return None
    # Set more than once (a config class per environment): the types all of them compress.
    types = set(FLASK_COMPRESS_MIMETYPES)
    for index, value in enumerate(listed):
        assert isinstance(value, list | tuple | set)
        given = {str(item) for item in value}
        types = given if index == 0 else types & given
    registered = not any(value is False for value in project.setting("COMPRESS_REGISTER"))
    for site in project.sites:
        if site.mimetype is None or site.stream is None:
            continue
        mimetype = site.mimetype.partition(";")[0].strip().lower()
        if mimetype in types and (registered or _decorated_compressed(site)):
            return mimetype
    return None


def _decorated_compressed(site: StreamSite) -> bool:
    return any(
        last_name(_decorator_target(decorator)) == "compressed"
        for view in site.views
        for decorator in view.decorator_list
    )


# ------------------------------------------------------------------ Redis
def _redis(project: Project) -> Iterator[Finding]:
    for module in project.modules:
        clients = _redis_clients(module)
        if not clients:
            continue
        for node, _ in module.calls:
            if not (isinstance(node.func, ast.Attribute) and node.func.attr in _BLOCKING_READS):
                continue
            client = clients.get(last_name(node.func.value) or "")
            if client is None:
                continue
            argument, unit = _BLOCKING_READS[node.func.attr]
            value = next((k.value for k in node.keywords if k.arg == argument), None)
            if value is None and argument == "timeout" and len(node.args) > 1:
                value = node.args[1]
            wait = module.constant(value)
            if isinstance(wait, bool) or not isinstance(wait, int | float):
                continue
            timeout = _socket_timeout(module, client, clients)
            if timeout is None or isinstance(timeout, str):
                continue
            block = wait * unit
            if block == 0 or timeout <= block:
                explicit = any(k.arg == "socket_timeout" for k in client.keywords)
                yield _at(
                    module,
                    node,
                    "FS150",
                    command=node.func.attr,
                    wait=f"{block:g} s" if block else "forever",
                    timeout=f"{timeout:g} s" if explicit else "5 s (redis-py 8's default)",
                )


def _redis_clients(module: Module) -> dict[str, ast.Call]:
    """Names (variables or attributes) bound to a redis client or pool made in *module*."""
    clients: dict[str, ast.Call] = {}
    assignments: list[ast.Assign | ast.AnnAssign] = [*module.of(ast.Assign)]
    assignments += module.of(ast.AnnAssign)
    for node in assignments:
        if not isinstance(node.value, ast.Call):
            continue
        call = node.value
        origin = module.origin(call.func) or ""
        if last_name(call.func) not in _REDIS_CLIENTS or not origin.startswith("redis"):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            name = last_name(target)
            if name is not None:
                clients[name] = call
    return clients


def _socket_timeout(
    module: Module, client: ast.Call, clients: dict[str, ast.Call]
) -> float | str | None:
    """The client's socket timeout in seconds; None when it has none; "?" when unknown."""
    given = next((k.value for k in client.keywords if k.arg == "socket_timeout"), None)
    if given is None:
        pool = next((k.value for k in client.keywords if k.arg == "connection_pool"), None)
        if pool is not None:
            source = clients.get(last_name(pool) or "")
            return "?" if source is None else _socket_timeout(module, source, clients)
        if any(k.arg is None for k in client.keywords):
            return "?"  # **options may carry it
        return REDIS_DEFAULT_SOCKET_TIMEOUT
    value = module.constant(given)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "?"
    return float(value)
