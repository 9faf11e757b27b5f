"""The files of a checked project: which ones to read, and which Python modules to parse.

Parsing is most of a check's cost, in time and memory, so a Python file is parsed only when a
scan of its bytes shows it can matter:

1. it names Flask and something a stream is made of (a ``Response(...)``,
   ``stream_with_context``, a hook, a blueprint's registration, ``yield`` beside a route...),
   or it makes a blocking Redis read;
2. it names Flask and calls one of the functions found in step 1 to take part in a stream
   (a helper that hands its argument to ``Response``, a generator), or it defines a
   function a stream in step 1 is made by or calls, that no parsed module defines;
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
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._findings import Finding, finding
from ._model import Module

# Directories that hold other people's code or build output, never the project's own.
_SKIPPED = frozenset(
    {"node_modules", "__pycache__", "site-packages", "build", "dist", "venv", "env", "htmlcov"}
)
_STREAM_PARTS = re.compile(
    rb"(?:Response|response_class|make_response|register_blueprint|add_url_rule|Compress"
    rb"|get_template|from_string)\s*\(|stream_with_context|stream_template"
    rb"|after_request|after_app_request|teardown_|wsgi_app"
)
# A generator in a module with routes may be a view that streams itself; elsewhere it is
# parsed when a stream found in the first step is made by it (see `mentioning`).
_ROUTE = re.compile(rb"\.(?:route|get|post|put|patch|delete)\s*\(")
_BLOCKING_READ = re.compile(rb"\b(?:xread|xreadgroup|b[lr]pop|brpoplpush|blmove|bzpopm(?:in|ax))\b")
# Literal searches first: far faster than a pattern over every file.
_SETTINGS = (b"COMPRESS_", b"eartbeat", b"EARTBEAT")


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


@dataclass
class ConfigNode:
    """A directive of a proxy's configuration: its words, where it is, and its block (None
    for a directive without one). *opaque*: an include (or placeholder) that cannot be read,
    so it may set anything; *included*: the files an include brought in."""

    name: str
    args: list[str]
    path: Path
    line: int
    column: int
    block: list[Any] | None = None
    opaque: bool = False
    included: list[Path] = field(default_factory=list)


class ConfigError(ValueError):
    """A proxy's configuration file is not well formed: where, and why (an FS001 finding)."""

    def __init__(self, path: Path, line: int, reason: str, column: int = 1) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.column, self.reason = path, line, column, reason

    def finding(self) -> Finding:
        return finding("FS001", self.path, self.line, self.column, error=self.reason)


def read_config(path: Path) -> str:
    """The text of a configuration file a reader parses; `ConfigError` when it cannot."""
    try:
        return read_bytes(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(path, 1, f"cannot read it ({error})") from error


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
            flask = b"flask" in data
            streams = _STREAM_PARTS.search(data) or (b"yield" in data and _ROUTE.search(data))
            if (flask and streams) or (b"redis" in data and _BLOCKING_READ.search(data)):
                modules += self._parse(file, data)
                continue
            if flask:
                self._flask.append(file)
            if any(word in data for word in _SETTINGS):
                self._settings.append(file)
        return modules

    def mentioning(self, called: Iterable[str], defined: Iterable[str]) -> list[Module]:
        """Step 2: the Flask modules not parsed yet that call one of *called*, and the
        modules not parsed yet that define one of *defined*."""
        calls = _words(called, rb"\b(?:", rb")\s*\(")
        definitions = _words(defined, rb"\bdef\s+(?:", rb")\b")
        defined_words = [name.encode() for name in defined if name.isidentifier()]
        flask = {file.path for file in self._flask}
        found: list[Module] = []
        for file in self.files:
            if file.path in self._parsed:
                continue
            in_flask = file.path in flask
            if not (definitions or (calls and in_flask)):
                continue
            data = read_bytes(file.path)
            named = any(word in data for word in defined_words)  # before the slower pattern
            if (calls is not None and in_flask and calls.search(data)) or (
                named and definitions is not None and definitions.search(data)
            ):
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


def _words(names: Iterable[str], before: bytes, after: bytes) -> re.Pattern[bytes] | None:
    """A pattern for any of *names* between *before* and *after*; None for no names."""
    words = sorted({name.encode() for name in names if name.isidentifier()})
    return re.compile(before + b"|".join(words) + after) if words else None
