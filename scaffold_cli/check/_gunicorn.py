"""FS2xx: gunicorn's settings in a project that streams, merged as gunicorn merges them.

gunicorn reads, from least to most authoritative: its configuration file (``-c`` on the
command line, else ``-c`` in ``GUNICORN_CMD_ARGS``, else ``gunicorn.conf.py`` in the working
directory), then ``GUNICORN_CMD_ARGS``, then the command line. The command lines that start
it are found in Procfiles, Dockerfiles (``CMD``/``ENTRYPOINT``/``RUN``, shell and exec forms),
shell scripts, systemd units and YAML files (compose ``command:``/``entrypoint:``,
Kubernetes ``command:``/``args:``), and each is judged with the configuration it loads.
Whatever cannot be known (a ``$VARIABLE``, a configuration file that is not in the project,
a setting made by an expression) is not judged: the checker says nothing rather than guess.
A configuration file is judged on its own only in a project with no command line for it.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from ._findings import Edit, Finding, finding
from ._fixes import FIX_THREADS, indentation, insert_line, quote, source
from ._fixes import end as fix_end
from ._fixes import start as fix_start
from ._model import Module, literal

# Fewer threads than this and a few open pages fill a gthread worker: further clients wait.
MIN_THREADS = 8
# A worker timeout at or above this (or 0) reads as an attempt to let long streams live.
LONG_TIMEOUT = 300
# Settings a gunicorn configuration file sets (a file with none of them is something else).
CONFIG_SETTINGS = frozenset(
    {
        "bind",
        "workers",
        "worker_class",
        "threads",
        "worker_connections",
        "timeout",
        "graceful_timeout",
        "keepalive",
        "wsgi_app",
        "preload_app",
        "max_requests",
        "max_requests_jitter",
        "accesslog",
        "errorlog",
        "loglevel",
        "access_log_format",
        "logconfig_dict",
        "capture_output",
        "pidfile",
        "daemon",
        "reload",
        "chdir",
        "pythonpath",
        "raw_env",
        "user",
        "group",
        "umask",
        "backlog",
        "certfile",
        "keyfile",
        "forwarded_allow_ips",
        "proc_name",
        "worker_tmp_dir",
        "on_starting",
        "when_ready",
        "pre_fork",
        "post_fork",
        "post_worker_init",
        "worker_exit",
        "child_exit",
        "on_exit",
    }
)
_JUDGED = ("worker_class", "threads", "timeout")
_NUMERIC = frozenset({"threads", "timeout"})
# Command-line options that set a judged setting or name the configuration file.
_OPTIONS = {
    "-k": "worker_class",
    "--worker-class": "worker_class",
    "--threads": "threads",
    "-t": "timeout",
    "--timeout": "timeout",
    "-c": "config",
    "--config": "config",
}
# Other options that take a value (so a `$VARIABLE` after them is that value, not options).
_VALUED = frozenset(
    [
        "-b",
        "--bind",
        "-w",
        "--workers",
        "--worker-connections",
        "--max-requests",
        "--max-requests-jitter",
        "--graceful-timeout",
        "--keep-alive",
        "--limit-request-line",
        "--limit-request-fields",
        "--limit-request-field_size",
        "--limit-request-field-size",
        "--backlog",
        "--log-level",
        "--access-logfile",
        "--error-logfile",
        "--log-file",
        "--access-logformat",
        "--log-config",
        "--log-syslog-to",
        "--chdir",
        "--pythonpath",
        "-e",
        "--env",
        "-n",
        "--name",
        "-p",
        "--pid",
        "-u",
        "--user",
        "-g",
        "--group",
        "-m",
        "--umask",
        "--certfile",
        "--keyfile",
        "--ca-certs",
        "--ssl-version",
        "--ciphers",
        "--forwarded-allow-ips",
        "--proxy-allow-from",
        "--worker-tmp-dir",
        "--statsd-host",
        "--statsd-prefix",
        "--paste",
        "--reload-engine",
        "--reload-extra-file",
        "--control-socket",
        "--dogstatsd-tags",
    ]
)
_VARIABLE = re.compile(r"\$(\w+|\{[^}]*\})")


def _worker_kind(value: str) -> str:
    lowered = value.lower()
    for kind in ("gthread", "gevent", "eventlet", "tornado", "uvicorn", "sync"):
        if kind in lowered:
            return kind
    if "threadworker" in lowered:
        return "gthread"
    return "other"


@dataclass(frozen=True)
class Setting:
    """A setting's value where it is given (`NotImplemented` when it cannot be known)."""

    value: object
    path: Path
    line: int
    column: int
    # The assignment in a configuration file that gives it (for a fix).
    node: ast.stmt | None = field(default=None, compare=False)


@dataclass
class Layer:
    """What one source sets. *opaque*: it may set anything else too (``$OPTIONS``,
    ``from settings import *``), so what it leaves out is not known."""

    settings: dict[str, Setting] = field(default_factory=dict)
    opaque: bool = False
    config: Setting | None = None  # the configuration file it names (``-c``)


# ------------------------------------------------------------------ configuration files
def is_gunicorn_config(path: Path) -> bool:
    """``gunicorn.conf.py``, ``gunicorn_config.py`` and the like."""
    return path.suffix == ".py" and path.name.startswith("gunicorn")


def looks_like_config(module: Module) -> bool:
    """Whether *module* sets gunicorn settings at its top level (and is not a custom
    application that passes its options in code)."""
    names = {name for name, _ in _assignments(module.tree.body)}
    subclasses_application = any(
        isinstance(node, ast.ClassDef) and any("Application" in ast.unparse(b) for b in node.bases)
        for node in module.tree.body
    )
    return bool(names & CONFIG_SETTINGS) and not subclasses_application


def _assignments(statements: list[ast.stmt]) -> Iterator[tuple[str, ast.stmt]]:
    for statement in statements:
        targets: list[ast.expr] = []
        if isinstance(statement, ast.Assign):
            targets = statement.targets
        elif isinstance(statement, ast.AnnAssign | ast.AugAssign):
            targets = [statement.target]
        for target in targets:
            if isinstance(target, ast.Name):
                yield target.id, statement


def config_layer(module: Module) -> Layer:
    """The settings of a configuration file: top-level assignments of literals. A setting
    assigned under an ``if``, ``try`` or ``with``, or to an expression, is not known; a star
    import or ``globals()`` may set anything."""
    layer = Layer()
    for name, statement in _assignments(module.tree.body):
        value = statement.value if isinstance(statement, ast.Assign | ast.AnnAssign) else None
        known = literal(value) if not isinstance(statement, ast.AugAssign) else NotImplemented
        layer.settings[name] = Setting(
            known, module.path, statement.lineno, statement.col_offset + 1, statement
        )
    for statement in module.tree.body:
        if isinstance(statement, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for node in ast.walk(statement):
                if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        if isinstance(target, ast.Name):
                            layer.settings[target.id] = Setting(
                                NotImplemented, module.path, node.lineno, node.col_offset + 1
                            )
        elif isinstance(statement, ast.ImportFrom) and any(a.name == "*" for a in statement.names):
            layer.opaque = True
    layer.opaque = layer.opaque or any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id
        in (
            "globals",
            "exec",
        )
        for node in module.of(ast.Call)
    )
    return layer


# ------------------------------------------------------------------ command lines
@dataclass(frozen=True)
class Command:
    """``gunicorn ...`` started from *path*: its arguments and where ``gunicorn`` is."""

    path: Path
    line: int
    column: int
    words: tuple[str, ...]


_COMMAND_FILES = re.compile(
    r"^(Procfile|Dockerfile.*|.*\.dockerfile|.*\.sh|.*\.service|.*\.ya?ml|\.env(\..*)?)$"
)
_COMMAND = re.compile(r"(?<![\w.-])gunicorn(?![\w.\[=<>~/-])")
_CMD_ARGS = re.compile(r"\bGUNICORN_CMD_ARGS\s*[=:]\s*(\"[^\"]*\"|'[^']*'|[^\n]*)")


def is_command_file(path: Path) -> bool:
    """Files that may start gunicorn or set ``GUNICORN_CMD_ARGS``: Procfiles, Dockerfiles,
    shell scripts, systemd units, YAML files and ``.env`` files."""
    return _COMMAND_FILES.match(path.name) is not None


def commands(path: Path, text: str) -> list[Command]:
    """Every gunicorn command line in the file *path*."""
    if "gunicorn" not in text:
        return []
    if path.suffix in (".yml", ".yaml"):
        return list(_yaml_commands(path, text))
    if path.name.startswith(".env"):
        return []
    return list(_line_commands(path, text))


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines with their backslash continuations joined, numbered by their first line."""
    pending: list[str] = []
    start = 1
    for number, line in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip()[:-1])
            continue
        pending.append(line)
        yield start, " ".join(pending)
        pending = []
    if pending:
        yield start, " ".join(pending)


def _line_commands(path: Path, text: str) -> Iterator[Command]:
    """Command lines in a Procfile, Dockerfile, script or unit: shell words or a JSON exec
    form; a Dockerfile's exec-form ``CMD`` adds its words to an ``ENTRYPOINT`` of gunicorn."""
    entrypoint: Command | None = None
    for number, line in _logical_lines(text):
        stripped = line.lstrip()
        if stripped.startswith("#"):
            continue
        instruction = stripped.split(None, 1)[0].upper() if stripped else ""
        if instruction == "CMD" and entrypoint is not None:
            extra = _exec_form(stripped[3:].strip())
            if extra is not None:
                yield Command(
                    entrypoint.path, entrypoint.line, entrypoint.column, entrypoint.words + extra
                )
                entrypoint = None
                continue
        match = _COMMAND.search(line)
        if match is None or re.search(r"\b(install|add|show)\b", line[: match.start()]):
            continue
        words = _words(line[match.end() :])
        if words is None or not _is_invocation(words):
            continue
        command = Command(path, number, match.start() + 1, words)
        if instruction == "ENTRYPOINT" and stripped[10:].lstrip().startswith("["):
            entrypoint = command
        yield command


def _is_invocation(words: tuple[str, ...]) -> bool:
    """A command has options or an application (module:variable); a mere mention has not."""
    return any(w.startswith("-") or ":" in w or _VARIABLE.search(w) for w in words)


def _exec_form(text: str) -> tuple[str, ...] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return tuple(str(w) for w in value) if isinstance(value, list) else None


def _words(rest: str) -> tuple[str, ...] | None:
    """The arguments after ``gunicorn``: a shell line or a JSON exec form (``"-k", "gevent"``).
    Quoted variables stay as they are (``"$THREADS"``) so they read as unknown values."""
    if rest.startswith('"'):  # the closing quote of "gunicorn" in ["gunicorn", "-k", ...]
        body = rest.removeprefix('"').strip().removeprefix(",").strip()
        body = body[: body.index("]")] if "]" in body else body
        try:
            return tuple(str(word) for word in json.loads(f"[{body}]"))
        except ValueError:
            return None
    try:
        lexer = shlex.shlex(rest, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
    except ValueError:
        return None
    for index, word in enumerate(words):
        if set(word) <= set(";&|"):
            return tuple(words[:index])
    return tuple(words)


def _yaml_commands(path: Path, text: str) -> Iterator[Command]:
    """``command:``/``entrypoint:`` (compose) and ``command:``/``args:`` (Kubernetes) that
    start gunicorn, as a string or a list."""
    try:
        documents = list(yaml.compose_all(text))
    except yaml.YAMLError:
        return
    for document in documents:
        if document is not None:
            yield from _yaml_nodes(path, document)


def _yaml_nodes(path: Path, node: yaml.Node) -> Iterator[Command]:
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _yaml_nodes(path, item)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    parts: dict[str, yaml.Node] = {}
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value in ("command", "entrypoint", "args"):
            parts[key.value] = value
        else:
            yield from _yaml_nodes(path, value)
    found = _yaml_words(parts)
    if found is None:
        return
    words, start = found
    for index, word in enumerate(words):
        if _COMMAND.fullmatch(Path(word).name):
            rest = tuple(words[index + 1 :])
            if _is_invocation(rest):
                line, column = start.start_mark.line + 1, start.start_mark.column + 1
                yield Command(path, line, column, rest)
            return


def _yaml_words(parts: dict[str, yaml.Node]) -> tuple[list[str], yaml.Node] | None:
    """The words of ``entrypoint`` + ``command`` + ``args``, and the first of these nodes."""
    words: list[str] = []
    start: yaml.Node | None = None
    for name in ("entrypoint", "command", "args"):
        if name not in parts:
            continue
        value = parts[name]
        if isinstance(value, yaml.ScalarNode):
            split = _words(str(value.value))
            if split is None:
                return None
            words += split
        elif isinstance(value, yaml.SequenceNode):
            words += [str(item.value) for item in value.value if isinstance(item, yaml.ScalarNode)]
        start = start or value
    return None if start is None else (words, start)


def cmd_args_values(path: Path, text: str) -> list[tuple[str, Setting]]:
    """The values given ``GUNICORN_CMD_ARGS`` in a file (``ENV``, ``export``, ``Environment=``,
    compose ``environment:``, a ``.env`` line), each with where it is given. A mention it
    cannot read as an assignment (a Kubernetes ``name:``/``value:`` pair, ``ENV NAME value``,
    ``$GUNICORN_CMD_ARGS`` passed on) counts as a value that is not known."""
    values = []
    for match in _CMD_ARGS.finditer(text):
        value = match.group(1).strip()
        if value[:1] in "\"'" and value[-1:] == value[:1]:
            value = value[1:-1]
        values.append((value, _position(path, text, match.start())))
    if text.count("GUNICORN_CMD_ARGS") > len(values):
        where = _position(path, text, text.index("GUNICORN_CMD_ARGS"))
        values.append(("$GUNICORN_CMD_ARGS", where))
    return values


def _position(path: Path, text: str, offset: int) -> Setting:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Setting(None, path, line, column)


def argv_layer(words: tuple[str, ...], where: Setting) -> Layer:
    """The settings *words* (gunicorn's arguments) give, placed at *where*."""
    layer = Layer()
    pending: str | None = None
    skip = False
    for word in words:
        if pending is not None:
            _set(layer, pending, word, where)
            pending = None
            continue
        if skip:
            skip = False
            continue
        name, equals, value = word.partition("=")
        if name in _OPTIONS and equals:
            _set(layer, _OPTIONS[name], value, where)
        elif word in _OPTIONS:
            pending = _OPTIONS[word]
        elif word.startswith(("-k", "-t", "-c")) and not word.startswith("--") and len(word) > 2:
            _set(layer, _OPTIONS[word[:2]], word[2:], where)
        elif word in _VALUED or (word.startswith("--") and not equals and word not in _FLAGS):
            skip = True  # its value follows
        elif _VARIABLE.search(word) and not word.startswith("-"):
            layer.opaque = True  # `$OPTIONS` or "$@": may carry any option
    return layer


# Options without a value, told apart from unknown options that take one.
_FLAGS = frozenset(
    [
        "--reload",
        "--preload",
        "--daemon",
        "--capture-output",
        "--enable-stdio-inheritance",
        "--check-config",
        "--print-config",
        "--spew",
        "--no-sendfile",
        "--reuse-port",
        "--strip-header-spaces",
        "--suppress-ragged-eofs",
        "--do-handshake-on-connect",
        "--help",
        "--version",
        "--no-control-socket",
    ]
)


def _set(layer: Layer, name: str, word: str, where: Setting) -> None:
    value: object = word
    if _VARIABLE.search(word):
        value = NotImplemented
    elif name in _NUMERIC:
        value = _number(word)
    setting = Setting(value, where.path, where.line, where.column)
    if name == "config":
        layer.config = setting
    else:
        layer.settings[name] = setting


def _number(word: str) -> object:
    """A number given on the command line; `NotImplemented` for anything else."""
    for kind in (int, float):
        try:
            return kind(word)
        except ValueError:
            continue
    return NotImplemented


# ------------------------------------------------------------------ the project
ConfigLoader = Callable[[str, Path], "Module | None"]


@dataclass
class GunicornProject:
    """The gunicorn side of a project: its command lines, ``GUNICORN_CMD_ARGS`` values and
    configuration files.

    *load* finds a configuration file a command line names (``-c path`` relative to the
    command file, or a module ``python:name``) among the project's files; *default_config*
    finds the ``gunicorn.conf.py`` a command line in a given directory would load (None:
    none there) and tells whether one elsewhere might be loaded instead.
    """

    load: ConfigLoader
    default_config: Callable[[Path], tuple[Module | None, bool]]
    commands: list[Command] = field(default_factory=list)
    cmd_args: dict[Path, list[tuple[str, Setting]]] = field(default_factory=dict)
    configs: list[Module] = field(default_factory=list)

    def add_file(self, path: Path, text: str) -> None:
        self.commands += commands(path, text)
        values = cmd_args_values(path, text)
        if values:
            self.cmd_args[path] = values

    def findings(self) -> Iterator[Finding]:
        loaded: set[Path] = set()
        for command in self.commands:
            merged = self._merged(command, loaded)
            if merged is not None:
                yield from _judge(merged, Setting(None, command.path, command.line, command.column))
        if self.commands:
            return  # a configuration file is judged with the command lines that load it
        for module in self.configs:
            if looks_like_config(module):
                layer = config_layer(module)
                if not layer.opaque:
                    yield from _judge(layer.settings, Setting(None, module.path, 1, 1))

    def _merged(self, command: Command, loaded: set[Path]) -> dict[str, Setting] | None:
        """The settings in force for *command*, or None when they cannot be known."""
        where = Setting(None, command.path, command.line, command.column)
        cli = argv_layer(command.words, where)
        environment = self._environment(command, where)
        if cli.opaque or environment is None or environment.opaque:
            return None
        config_name = cli.config or environment.config
        config: Layer | None
        if config_name is not None:
            if not isinstance(config_name.value, str):
                return None
            module = self.load(config_name.value, command.path.parent)
            if module is None:
                return None
            loaded.add(module.path)
            config = config_layer(module)
        else:
            module, elsewhere = self.default_config(command.path.parent)
            if module is None and elsewhere:
                return None  # a gunicorn.conf.py that this command line may or may not load
            config = config_layer(module) if module is not None else Layer()
        if config.opaque:
            return None
        return {**config.settings, **environment.settings, **cli.settings}

    def _environment(self, command: Command, where: Setting) -> Layer | None:
        """``GUNICORN_CMD_ARGS`` for *command*: set in its own file, or else in another file
        whose environment may or may not reach it (what that sets is then not known)."""
        own = self.cmd_args.get(command.path, [])
        if len(own) > 1:
            return None
        if own:
            value, given_at = own[0]
            words = _words(value)
            return None if words is None else argv_layer(words, given_at)
        layer = Layer()
        for origin, values in self.cmd_args.items():
            if not _may_reach(origin, command.path):
                continue
            for value, _ in values:
                words = _words(value)
                if words is None:
                    return None
                other = argv_layer(words, where)
                if other.opaque or other.config is not None:
                    return None
                for name in other.settings:
                    layer.settings[name] = Setting(NotImplemented, *_place(where))
        return layer


def _file_kind(path: Path) -> str:
    name = path.name
    if name.startswith("Dockerfile") or name.endswith(".dockerfile"):
        return "image"
    if path.suffix in (".sh", ".yml", ".yaml") or name.startswith(".env"):
        return {".sh": "script"}.get(path.suffix, "environment")
    return "own"  # a Procfile or a systemd unit: its environment is its own


def _may_reach(source: Path, command: Path) -> bool:
    """Whether an environment set in *source* may reach a command line in *command*: an
    image's ``ENV``, a compose or Kubernetes ``environment``, an ``.env`` file or a script's
    ``export`` reach the commands a container runs (its Dockerfile's, its scripts')."""
    if source == command:
        return True
    return _file_kind(source) != "own" and _file_kind(command) in ("image", "script")


def _place(where: Setting) -> tuple[Path, int, int]:
    return where.path, where.line, where.column


def _gthread(settings: dict[str, Setting], start: Setting) -> tuple[Edit, ...]:
    """FS201's fix in a configuration file: ``worker_class = "gthread"`` with threads, the
    worker class rewritten where the file sets it (else added at its end); not when the
    threads are set elsewhere (a command line may pin them)."""
    worker = settings.get("worker_class")
    if "threads" in settings:
        return ()
    if worker is None:
        if start.path.suffix != ".py" or start.line != 1:
            return ()  # started from a command line: the fix is the deployment's to choose
        lines = source(start.path)
        text = f'worker_class = "gthread"\nthreads = {FIX_THREADS}\n'
        if lines and not lines[-1].endswith("\n"):
            text = "\n" + text
        return (insert_line(start.path, len(lines) + 1, text),)
    node = worker.node
    if not isinstance(node, ast.Assign | ast.AnnAssign) or not isinstance(node.value, ast.Constant):
        return ()
    lines = source(worker.path)
    mark = quote(lines, [node.value])
    threads = f"{indentation(lines, node.lineno)}threads = {FIX_THREADS}\n"
    return (
        Edit(
            worker.path,
            fix_start(lines, node.value),
            fix_end(lines, node.value),
            f"{mark}gthread{mark}",
        ),
        insert_line(worker.path, fix_end(lines, node)[0] + 1, threads),
    )


def _judge(settings: dict[str, Setting], start: Setting) -> Iterator[Finding]:
    """The FS2xx findings for *settings* (each where it is given); a setting left out has
    gunicorn's default and is reported at *start*, where gunicorn is started."""

    def value(name: str, default: object) -> object:
        return settings[name].value if name in settings else default

    def at(name: str) -> tuple[Path, int, int]:
        return _place(settings.get(name, start))

    worker_value = value("worker_class", "sync")
    threads = value("threads", 1)
    if not isinstance(worker_value, str) or isinstance(threads, bool):
        return
    kind = _worker_kind(worker_value)
    if kind == "sync" and threads is NotImplemented:
        return  # a sync worker with threads is gthread: which one is not known
    if kind == "sync" and isinstance(threads, int) and threads > 1:
        kind = "gthread"  # gunicorn switches a sync worker with threads to gthread
    if kind == "sync":
        how = "uses" if "worker_class" in settings else "defaults to"
        found = finding("FS201", *at("worker_class"), how=how)
        yield replace(found, fix=_gthread(settings, start))
        return
    if kind == "gthread" and isinstance(threads, int) and threads < MIN_THREADS:
        name = "threads" if "threads" in settings else "worker_class"
        yield finding("FS202", *at(name), threads=threads, minimum=MIN_THREADS)
    timeout = value("timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        return
    if timeout == 0 or timeout >= LONG_TIMEOUT:
        yield finding("FS203", *at("timeout"), value=timeout, worker=kind)
