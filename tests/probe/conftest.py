"""Real servers for the probe: a generated project on gunicorn, and nginx in front of it five ways.

One gunicorn (heartbeats every 5 s, so an idle gap of 2 s is silent) serves them all:

* ``direct``: gunicorn itself;
* ``nginx``: the project's own deploy/nginx.conf;
* ``undone``: that config with its streaming settings undone (nginx's proxy defaults) and
  ``proxy_ignore_headers X-Accel-Buffering``, so the app's header cannot save the stream;
* ``gzip``: the project's config with gzip for every stream type;
* ``cut``: the project's config with a 1 s proxy_read_timeout;
* ``h2c``: the project's plain HTTP listener speaking HTTP/2 in the clear (prior knowledge);
* ``h2``: the project's own config again, on its TLS listener with HTTP/2 (the development
  certificate from the project's deploy/dev-cert.sh).

Every process is started by harness/stack.py and stopped by its pid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from harness.stack import (
    Process,
    nginx_binary,
    render_project,
    start_gunicorn,
    start_nginx,
    stop,
)
from tests.deploy.conftest import nginx_defaults, with_read_timeout

STREAM_TYPES = "text/event-stream application/x-ndjson text/plain"


def undone(text: str) -> str:
    text = nginx_defaults(text)
    text, count = re.subn(
        r"proxy_buffering on;",
        "proxy_buffering on;\n            proxy_ignore_headers X-Accel-Buffering;",
        text,
    )
    assert count
    return text


def gzip(text: str) -> str:
    text, count = re.subn(r"(?m)^(\s*)gzip_types [^;]+;", rf"\1gzip_types {STREAM_TYPES};", text)
    assert count == 1
    return text


def cleartext_http2(text: str) -> str:
    """HTTP/2 without TLS on the plain listener (the one ``listen`` without parameters)."""
    text, count = re.subn(r"(?m)^(\s*)listen ([0-9.]+:[0-9]+);", r"\1listen \2 http2;", text)
    assert count == 1
    return text


@dataclass
class Servers:
    direct: Process
    nginx: Process
    undone: Process
    gzip: Process
    cut: Process
    h2c: Process
    h2: Process | None

    def url(self, via: str, path: str) -> str:
        if via == "h2":
            assert self.h2 is not None
            return f"https://127.0.0.1:{self.h2.tls_port}{path}"
        process: Process = getattr(self, via)
        return f"{process.url}{path}"


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    root = tmp_path_factory.mktemp("probe")
    project = render_project(root / "project")
    started: list[Process] = []
    try:
        app = start_gunicorn(
            project,
            log_path=root / "gunicorn.log",
            env={"FLASK_STREAM_HEARTBEAT_SECONDS": "5"},
            extra_args=["--workers", "1"],
        )
        started.append(app)

        def proxy(name: str, edit: Callable[[str], str] | None = None) -> Process:
            process = start_nginx(project, root / name, upstream_port=app.port, edit=edit)
            started.append(process)
            return process

        nginx = proxy("nginx")
        yield Servers(
            direct=app,
            nginx=nginx,
            undone=proxy("undone", undone),
            gzip=proxy("gzip", gzip),
            cut=proxy("cut", with_read_timeout("1s")),
            h2c=proxy("h2c", cleartext_http2),
            h2=nginx,
        )
    finally:
        for process in reversed(started):
            stop(process)
