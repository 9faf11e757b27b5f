"""Real servers for the probe: a generated project on gunicorn, and nginx in front of it five ways.

One gunicorn (heartbeats every 5 s, so an idle gap of 2 s is silent) serves them all:

* ``direct``: gunicorn itself;
* ``nginx``: the project's own deploy/nginx.conf;
* ``undone``: that config with its streaming settings undone (nginx's proxy defaults) and
  ``proxy_ignore_headers X-Accel-Buffering``, so the app's header cannot save the stream;
* ``gzip``: the project's config plus gzip for every stream type;
* ``cut``: the project's config with a 1 s proxy_read_timeout;
* ``h2``: the project's config on TLS with HTTP/2 (a self-signed certificate).

Every process is started by tests/deploy/stack.py and stopped by its pid.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.conftest import nginx_defaults, with_read_timeout
from tests.deploy.stack import (
    Process,
    nginx_binary,
    render_project,
    start_gunicorn,
    start_nginx,
    stop,
)

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
    text, count = re.subn(
        r"(?m)^(\s*)proxy_http_version 1\.1;",
        rf"\1gzip on;\n\1gzip_types {STREAM_TYPES};\n\1proxy_http_version 1.1;",
        text,
    )
    assert count == 1
    return text


def tls(certificate: Path, key: Path) -> Callable[[str], str]:
    def edit(text: str) -> str:
        text, count = re.subn(
            r"(?m)^(\s*)listen ([^;]+);",
            rf"\1listen \2 ssl http2;\n\1ssl_certificate {certificate};\n"
            rf"\1ssl_certificate_key {key};",
            text,
        )
        assert count == 1
        return text

    return edit


@dataclass
class Servers:
    direct: Process
    nginx: Process
    undone: Process
    gzip: Process
    cut: Process
    h2: Process | None

    def url(self, via: str, path: str) -> str:
        if via == "h2":
            assert self.h2 is not None
            return f"https://127.0.0.1:{self.h2.port}{path}"
        process: Process = getattr(self, via)
        return f"{process.url}{path}"


def self_signed(directory: Path) -> tuple[Path, Path] | None:
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    certificate, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return certificate, key


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

        keys = self_signed(root)
        yield Servers(
            direct=app,
            nginx=proxy("nginx"),
            undone=proxy("undone", undone),
            gzip=proxy("gzip", gzip),
            cut=proxy("cut", with_read_timeout("1s")),
            h2=None if keys is None else proxy("h2", tls(*keys)),
        )
    finally:
        for process in reversed(started):
            stop(process)
