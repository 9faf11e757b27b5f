"""Validation of the names and choices a user types.

The rules mirror the validators in ``copier.yml`` so that bad input is refused before Copier
runs (and before anything is written), with a message that names the offending value.
"""

from __future__ import annotations

import keyword
import re
import sys
from collections.abc import Iterable
from typing import Literal, get_args

from ._errors import ScaffoldError

# The choices copier.yml offers; tests/test_copier_config.py keeps them in step with it.
Style = Literal["decorator", "wrapper"]
Format = Literal["sse", "ndjson", "text"]
Server = Literal["gthread", "gevent"]
Proxy = Literal["nginx", "caddy", "apache", "none"]
ConflictMode = Literal["inline", "rej"]

STYLES: tuple[Style, ...] = get_args(Style)
FORMATS: tuple[Format, ...] = get_args(Format)
SERVERS: tuple[Server, ...] = get_args(Server)
PROXIES: tuple[Proxy, ...] = get_args(Proxy)

_PROJECT_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_PACKAGE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_ENDPOINT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ENDPOINT_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")

# Modules a generated project imports at run time (Flask's stack and the gunicorn workers),
# plus its own ``tests`` folder: a package of one of these names would shadow it on sys.path.
_DEPENDENCY_MODULES = frozenset(
    {
        "blinker",
        "click",
        "flask",
        "gevent",
        "greenlet",
        "gunicorn",
        "itsdangerous",
        "jinja2",
        "markupsafe",
        "tests",
        "werkzeug",
    }
)
# Endpoint modules sit beside these in <package>/endpoints/.
_RESERVED_ENDPOINT_NAMES = frozenset({"demo"})


def check_project_name(name: str) -> str:
    """Return ``name`` if it is a valid distribution name, else raise `ScaffoldError`."""
    if not _PROJECT_NAME.match(name):
        raise ScaffoldError(
            f"project name {name!r} is not a valid distribution name: use letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit"
        )
    return name


def package_from_project(project_name: str) -> str:
    """Derive the import package name from a project name, as ``copier.yml`` does."""
    lowered = re.sub(r"[^a-z0-9]+", "_", project_name.lower())
    return lowered.strip("_")


def check_package_name(name: str) -> str:
    """Return ``name`` if it can be the project's import package, else raise `ScaffoldError`."""
    if not _PACKAGE_NAME.match(name):
        raise ScaffoldError(
            f"package name {name!r} is not a lowercase Python identifier "
            "(letters, digits and '_', not starting with a digit); choose one with --package"
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(f"package name {name!r} is a Python keyword; choose another")
    if name in sys.stdlib_module_names or name in _DEPENDENCY_MODULES:
        raise ScaffoldError(
            f"package name {name!r} would shadow the module of that name "
            "(standard library or Flask's stack); choose another with --package"
        )
    return name


def check_endpoint_name(name: str, taken: Iterable[str] = ()) -> str:
    """Return ``name`` if it is a free snake_case endpoint name, else raise `ScaffoldError`."""
    if not _ENDPOINT_NAME.match(name):
        raise ScaffoldError(
            f"endpoint name {name!r} is not snake_case "
            "(lowercase letters, digits and '_', starting with a letter)"
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(f"endpoint name {name!r} is a Python keyword; choose another")
    if name in _RESERVED_ENDPOINT_NAMES:
        raise ScaffoldError(f"endpoint name {name!r} is reserved by the template; choose another")
    if name in set(taken):
        raise ScaffoldError(f"endpoint {name!r} already exists; choose another name")
    return name


def default_path(endpoint_name: str) -> str:
    """The URL path an endpoint gets when none is given: ``/NAME`` with ``_`` as ``-``."""
    return "/" + endpoint_name.replace("_", "-")


def check_endpoint_path(path: str, taken: Iterable[str] = ()) -> str:
    """Return ``path`` if it is a free, well-formed URL path, else raise `ScaffoldError`."""
    if not path.startswith("/"):
        raise ScaffoldError(f"endpoint path {path!r} must start with '/'")
    if not _ENDPOINT_PATH.match(path) or path == "/" or "//" in path:
        raise ScaffoldError(
            f"endpoint path {path!r} must be '/' followed by letters, digits and . _ ~ - /"
            " (not '/' alone, no '//')"
        )
    if path in set(taken):
        raise ScaffoldError(f"endpoint path {path!r} is already used by another endpoint")
    return path


def check_choice(what: str, value: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise `ScaffoldError`."""
    allowed = tuple(choices)
    if value not in allowed:
        raise ScaffoldError(f"unknown {what} {value!r}: choose one of {', '.join(allowed)}")
    return value


def proxy_option(proxy: str | None, nginx: bool | None) -> str | None:
    """The proxy asked for by ``--proxy``, or by the older ``--nginx/--no-nginx`` alias.

    Returns None when neither was given; refuses the two when they disagree.
    """
    if nginx is None:
        return proxy
    alias = "nginx" if nginx else "none"
    if proxy is not None and proxy != alias:
        flag = "--nginx" if nginx else "--no-nginx"
        raise ScaffoldError(f"{flag} means --proxy {alias}, which contradicts --proxy {proxy}")
    return alias
