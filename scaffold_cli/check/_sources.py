"""The files of a checked project: which ones to read, and which Python modules to parse.

Parsing is most of a check's cost, in time and memory, so a Python file is parsed only when a
scan of its bytes shows it can matter:

1. it names Flask and something a stream is made of (``Response``, ``yield``,
   ``stream_with_context``, a hook, a blueprint's registration...), or it makes a blocking
   Redis read; modules these import are parsed too when they make generators;
2. it names Flask and one of the functions found in step 1 to take part in a stream (a
   helper that hands its argument to ``Response``, a generator, what a generator calls);
3. it sets a heartbeat or a ``COMPRESS_*`` key, when a rule asks for the settings.

A file that cannot be read or parsed is a finding (FS001), not an error.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ._findings import Finding, finding
from ._model import Module

# Directories that hold other people's code or build output, never the project's own.
_SKIPPED = frozenset(
    {"node_modules", "__pycache__", "site-packages", "build", "dist", "venv", "env", "htmlcov"}
)
_FLASK = re.compile(rb"flask")
_STREAM_PARTS = re.compile(
    rb"Response|response_class|make_response|stream_with_context|stream_template|\byield\b"
    rb"|after_request|after_app_request|teardown_|register_blueprint|add_url_rule"
    rb"|Compress|wsgi_app|get_template|from_string"
)
_REDIS = re.compile(rb"redis")
_BLOCKING_READ = re.compile(rb"\b(?:xread|xreadgroup|b[lr]pop|brpoplpush|blmove|bzpopm(?:in|ax))\b")
_GENERATOR = re.compile(rb"\byield\b")
_SETTINGS = re.compile(rb"COMPRESS_|(?i:heartbeat)")


# Files as a fix would leave them, read instead of the disk's (``check --diff``).
_OVERLAY: ContextVar[Mapping[Path, str]] = ContextVar("overlay", default=MappingProxyType({}))


@contextlib.contextmanager
def reading(texts: Mapping[Path, str]) -> Iterator[None]:
    """Read *texts* (path to text) instead of those files on disk, in this context."""
    token = _OVERLAY.set({**_OVERLAY.get(), **texts})
    try:
        yield
    finally:
        _OVERLAY.reset(token)


def read_bytes(path: Path) -> bytes:
    """The bytes of *path*, or of the text `reading` gives for it."""
    text = _OVERLAY.get().get(path)
    return path.read_bytes() if text is None else text.encode("utf-8")


class CheckError(Exception):
    """The check could not run (a path that does not exist): one line."""


@dataclass(frozen=True)
class SourceFile:
    """A file of the project: where it is, and its path relative to the directory given."""

    path: Path
    relative: Path

    @property
    def is_test(self) -> bool:
        """A test module: pytest's names for one, or in a tests directory."""
        name = self.relative.name
        return (
            name == "conftest.py"
            or name.startswith("test_")
            or name.endswith("_test.py")
            or not {"tests", "test"}.isdisjoint(self.relative.parent.parts)
        )


def project_files(paths: Sequence[Path]) -> list[SourceFile]:
    """Each file in *paths* once, with its path relative to the directory given (or its name).

    Raises `CheckError` for a path that does not exist.
    """
    found: dict[Path, SourceFile] = {}
    for path in paths:
        if not path.exists():
            raise CheckError(f"{path}: no such file or directory")
        if path.is_file():
            found.setdefault(path, SourceFile(path, Path(path.name)))
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED)
            for name in sorted(files):
                file = Path(root) / name
                found.setdefault(file, SourceFile(file, Path(root).relative_to(path) / name))
    return list(found.values())


def read_text(path: Path) -> str | Finding:
    """The text of a configuration file, or an FS001 finding when it cannot be read."""
    try:
        return read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as error:
        return finding("FS001", path, 1, 1, error=f"not UTF-8 ({error.reason})")
    except OSError as error:
        return finding("FS001", path, 1, 1, error=f"cannot read it ({error.strerror})")


def parse_python(file: SourceFile, source: bytes | None = None) -> Module | Finding:
    """*file* parsed (its encoding declaration honoured), or an FS001 finding."""
    try:
        data = read_bytes(file.path) if source is None else source
    except OSError as error:
        return finding("FS001", file.path, 1, 1, error=f"cannot read it ({error.strerror})")
    try:
        tree = ast.parse(data, filename=str(file.path))
    except (SyntaxError, ValueError) as error:
        version = f"Python {sys.version_info.major}.{sys.version_info.minor}"
        if isinstance(error, SyntaxError):
            line, column = error.lineno or 1, error.offset or 1
            message = error.msg
        else:
            line, column, message = 1, 1, str(error)
        return finding(
            "FS001", file.path, line, column, error=f"{version} cannot parse it: {message}"
        )
    return Module(file.path, tree, is_test=file.is_test)


class PythonSources:
    """The project's Python files, parsed as far as the rules need them."""

    def __init__(self, files: list[SourceFile]) -> None:
        self.files = [f for f in files if f.path.suffix == ".py"]
        self._at_path = {f.path: f for f in self.files}
        self.findings: list[Finding] = []
        self._parsed: set[Path] = set()
        self._flask: list[SourceFile] = []  # Flask modules left for `mentioning`
        self._settings: list[SourceFile] = []  # modules left for `settings_modules`
        self._by_name: dict[str, list[SourceFile]] = {}
        for file in self.files:
            parts = file.relative.with_suffix("").parts
            if parts and parts[-1] == "__init__":
                parts = parts[:-1]
            for start in range(len(parts)):
                self._by_name.setdefault(".".join(parts[start:]), []).append(file)

    def modules(self) -> list[Module]:
        """Step 1: the modules that make streams, and the modules they import that make
        generators. The others are kept for `mentioning` and `settings_modules`."""
        modules: list[Module] = []
        for file in self.files:
            try:
                data = read_bytes(file.path)
            except OSError as error:
                self.findings.append(
                    finding("FS001", file.path, 1, 1, error=f"cannot read it ({error.strerror})")
                )
                continue
            flask = _FLASK.search(data) is not None
            if (flask and _STREAM_PARTS.search(data)) or (
                _REDIS.search(data) and _BLOCKING_READ.search(data)
            ):
                modules += self._parse(file, data)
                continue
            if flask:
                self._flask.append(file)
            if _SETTINGS.search(data):
                self._settings.append(file)
        for module in list(modules):
            for imported in self._imported_files(module):
                if imported.path not in self._parsed:
                    data = read_bytes(imported.path)
                    if _GENERATOR.search(data):
                        modules += self._parse(imported, data)
        return modules

    def mentioning(self, called: Iterable[str], defined: Iterable[str]) -> list[Module]:
        """Step 2: the Flask modules not parsed yet that call one of *called* or define one
        of *defined*."""
        patterns = [
            _words(called, rb"\b(?:", rb")\b"),
            _words(defined, rb"\bdef\s+(?:", rb")\b"),
        ]
        found: list[Module] = []
        for file in self._flask:
            if file.path in self._parsed:
                continue
            data = read_bytes(file.path)
            if any(p is not None and p.search(data) for p in patterns):
                found += self._parse(file, data)
        return found

    def settings_modules(self) -> list[Module]:
        """The modules left out by `modules` that set a heartbeat or a ``COMPRESS_*`` key."""
        found: list[Module] = []
        for file in self._settings:
            if file.path not in self._parsed:
                found += self._parse(file, None)
        return found

    def parse(self, path: Path) -> Module | None:
        """The module at *path* (a gunicorn configuration a command line names), if it parses."""
        file = self._at_path.get(path, SourceFile(path, Path(path.name)))
        parsed = parse_python(file)
        return parsed if isinstance(parsed, Module) else None

    def find(self, reference: str, base: Path) -> Module | None:
        """The Python file a gunicorn ``-c`` names, parsed: ``python:package.module``, or a
        path (``file:`` prefix optional) relative to *base* (the command line's directory),
        to a directory given, or matching the end of one project file's path (the deployed
        path, ``/app/gunicorn_config.py``, differs from the project's)."""
        if reference.startswith("python:"):
            candidates = self._by_name.get(reference.removeprefix("python:"), [])
            return self.parse(candidates[0].path) if len(candidates) == 1 else None
        wanted = Path(reference.removeprefix("file:"))
        if not wanted.is_absolute() and (base / wanted) in self._at_path:
            return self.parse(base / wanted)
        parts = [p for p in wanted.parts if p not in ("/", ".")]
        for length in range(len(parts), 0, -1):
            tail = tuple(parts[-length:])
            matches = [f for f in self.files if f.relative.parts[-length:] == tail]
            if len(matches) == 1:
                return self.parse(matches[0].path)
            if matches:
                return None
        return None

    def default_config(self, directory: Path) -> tuple[Module | None, bool]:
        """The ``gunicorn.conf.py`` that gunicorn started in *directory* (or at the top of
        the project) would load, and whether there is one elsewhere that it might load."""
        found = [f for f in self.files if f.path.name == "gunicorn.conf.py"]
        for file in found:
            if file.path.parent == directory or file.relative == Path("gunicorn.conf.py"):
                return self.parse(file.path), False
        return None, bool(found)

    def _parse(self, file: SourceFile, data: bytes | None) -> list[Module]:
        self._parsed.add(file.path)
        parsed = parse_python(file, data)
        if isinstance(parsed, Finding):
            self.findings.append(parsed)
            return []
        return [parsed]

    def _imported_files(self, module: Module) -> Iterator[SourceFile]:
        """The project files *module* imports from, as far as they can be told apart."""
        for node in module.of(ast.ImportFrom):
            if node.level:
                base = module.path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                parts = node.module.split(".") if node.module else []
                for alias in node.names:
                    for candidate in (
                        base.joinpath(*parts, f"{alias.name}.py"),
                        base.joinpath(*parts, alias.name, "__init__.py"),
                    ):
                        yield from self._at(candidate)
                if parts:
                    yield from self._at(base.joinpath(*parts[:-1], f"{parts[-1]}.py"))
                    yield from self._at(base.joinpath(*parts, "__init__.py"))
            elif node.module:
                for alias in node.names:
                    yield from self._named(f"{node.module}.{alias.name}")
                yield from self._named(node.module)
        for statement in module.of(ast.Import):
            for alias in statement.names:
                yield from self._named(alias.name)

    def _named(self, dotted: str) -> Iterator[SourceFile]:
        candidates = self._by_name.get(dotted, [])
        if len(candidates) == 1:
            yield candidates[0]

    def _at(self, path: Path) -> Iterator[SourceFile]:
        if path in self._at_path:
            yield self._at_path[path]


def _words(names: Iterable[str], before: bytes, after: bytes) -> re.Pattern[bytes] | None:
    """A pattern for any of *names* between *before* and *after*; None for no names."""
    words = sorted({name.encode() for name in names if name.isidentifier()})
    return re.compile(before + b"|".join(words) + after) if words else None
