"""Fixtures for the deployment tests: generated projects served by gunicorn and nginx.

Each pytest process (xdist worker) renders its projects and starts its servers once, on free
ports, and stops them by pid when the session ends, whatever happened.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from .stack import (
    Process,
    Project,
    chromium_binary,
    nginx_binary,
    render_project,
    start_gunicorn,
    start_nginx,
    stop,
)

HERE = Path(__file__).resolve().parent
SERVERS = ("gthread", "gevent")
VIAS = ("direct", "nginx")

requires_nginx = pytest.mark.skipif(
    nginx_binary() is None, reason="nginx is not installed (apt-get install nginx)"
)
requires_chromium = pytest.mark.skipif(
    chromium_binary() is None, reason="chromium is not installed (apt-get install chromium)"
)


def clone_stream_location(text: str, prefix: str = "/probe/") -> str:
    """Add ``location <prefix>`` with exactly the directives of the first stream location."""
    match = re.search(r"(?m)^(\s*)location = /\S+ \{\n(.*?)^\1\}\n", text, re.DOTALL)
    assert match, "the generated nginx.conf has no exact-match stream location"
    indent, body = match.group(1), match.group(2)
    clone = f"{indent}location {prefix} {{\n{body}{indent}}}\n"
    return text[: match.end()] + "\n" + clone + text[match.end() :]


def nginx_defaults(text: str) -> str:
    """Undo the generated config's streaming settings: nginx's proxy defaults come back.

    That is ``proxy_buffering on`` and an HTTP/1.0 upstream. Both matter: nginx 1.22 passes
    each read of a *chunked* HTTP/1.1 upstream body on even with buffering on, so a small
    trickle only stalls when the upstream speaks HTTP/1.0, as a bare ``proxy_pass`` does.
    """
    text, buffering = re.subn(r"proxy_buffering off;", "proxy_buffering on;", text)
    text, version = re.subn(r"\n\s*proxy_http_version 1\.1;", "", text)
    text, connection = re.subn(r'\n\s*proxy_set_header Connection "";', "", text)
    assert buffering and version and connection, "the generated nginx.conf changed shape"
    return text


def with_read_timeout(seconds: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        text, n = re.subn(r"proxy_read_timeout [^;]+;", f"proxy_read_timeout {seconds};", text)
        assert n, "the generated nginx.conf sets no proxy_read_timeout"
        return text

    return edit


@dataclass
class Stack:
    """gunicorn serving the probe app, nginx in front of it, and nginx with its defaults."""

    project: Project
    app: Process
    proxy: Process
    naive: Process
    confirm_dir: Path
    _tokens: Iterator[int]

    def port(self, via: str) -> int:
        return {"direct": self.app.port, "nginx": self.proxy.port}[via]

    def token(self) -> str:
        """A confirmation token no other probe stream uses."""
        return f"t{next(self._tokens)}-{uuid.uuid4().hex[:8]}"

    def fresh_count(self) -> int:
        """An event count (500 to 999) no other request in this session asks for: it tells
        this stream's "closed after N of M events" line apart in the shared log."""
        return 500 + next(self._tokens) % 500


class Servers:
    """Starts processes and stops every one of them, by pid, at the end of the session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Process] = []
        self.projects: dict[str, Project] = {}

    def project(self, server: str) -> Project:
        if server not in self.projects:
            self.projects[server] = render_project(self.root / f"project-{server}", server=server)
        return self.projects[server]

    def gunicorn(
        self,
        server: str,
        name: str,
        *,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> Process:
        """gunicorn with the project's deploy/gunicorn.conf.py, serving the probe app."""
        project = self.project(server)
        confirm_dir = self.root / "confirm"
        confirm_dir.mkdir(exist_ok=True)
        process = start_gunicorn(
            project,
            log_path=self.root / f"{name}.log",
            app="probe_app:create_app()",
            pythonpath=[HERE],
            env={
                "STREAM_PROBE_PACKAGE": project.package,
                "STREAM_PROBE_DIR": str(confirm_dir),
                **(env or {}),
            },
            extra_args=extra_args,
        )
        self.started.append(process)
        return process

    def nginx(
        self, server: str, name: str, upstream: Process, edit: Callable[[str], str] | None = None
    ) -> Process:
        """nginx with a copy of the project's deploy/nginx.conf, proxying to *upstream*."""
        process = start_nginx(
            self.project(server), self.root / name, upstream_port=upstream.port, edit=edit
        )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            stop(process)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = Servers(tmp_path_factory.mktemp("deploy"))
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture(scope="session", params=SERVERS)
def stack(request: pytest.FixtureRequest, servers: Servers) -> Stack:
    """The generated project under *server*, straight from its deploy/ files."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    server: str = request.param
    app = servers.gunicorn(server, f"gunicorn-{server}")
    proxy = servers.nginx(server, f"nginx-{server}", app, edit=clone_stream_location)
    naive = servers.nginx(
        server,
        f"nginx-defaults-{server}",
        app,
        edit=lambda text: nginx_defaults(clone_stream_location(text)),
    )
    return Stack(
        servers.project(server), app, proxy, naive, servers.root / "confirm", itertools.count()
    )


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# One browser per test process, shared by every module that drives one: Playwright's sync API
# runs an event loop in the thread, so a second instance in the same thread cannot start.
@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_binary(), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            launched.close()
