"""What one client, or one fault, must not do to a worker: real gunicorn.

- A restart while clients keep their connections alive (as browsers and nginx do) lets the
  old worker go at once, not after ``graceful_timeout`` (gevent kept it until then).
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Mapping

import pytest

from .conftest import Servers
from .stack import HOST, Process, Project, restart_gracefully, start_gunicorn

pytestmark = pytest.mark.deploy

WAIT = 30.0


def serve(
    servers: Servers, project: Project, name: str, env: Mapping[str, str], *extra: str
) -> Process:
    """The project under gunicorn, one worker, stopped with the session."""
    app = start_gunicorn(
        project,
        log_path=servers.root / f"{name}.log",
        env=env,
        extra_args=["--workers", "1", *extra],
    )
    servers.started.append(app)
    return app


# ------------------------------------------------- a restart with kept-alive connections
# Longer than gthread's own 2 s for kept-alive connections; gevent used to wait it out.
GRACEFUL_TIMEOUT = 4


class KeptAlive:
    """An SSE client that keeps its connection once the stream has ended, as a browser (or
    nginx's upstream pool) does; it reads the body to its end on a thread."""

    def __init__(self, port: int, path: str) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=WAIT)
        self.conn.request("GET", path)
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        self.body = b""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError, http.client.HTTPException):
            self.body = self.response.read()

    def ended(self) -> bool:
        self._thread.join(timeout=WAIT)
        return not self._thread.is_alive()


def without_keep_alive_hooks(project: Project) -> str:
    """A copy of the generated gunicorn.conf.py whose keep-alive hooks do nothing."""
    copy = project.gunicorn_conf.with_name("gunicorn-without-keep-alive-hooks.conf.py")
    copy.write_text(
        project.gunicorn_conf.read_text()
        + "\n\ndef pre_request(worker, req):\n    pass\n"
        + "\n\ndef post_request(worker, req, environ, resp):\n    pass\n"
    )
    return str(copy)


@pytest.mark.parametrize(
    ("server", "hooks"),
    [("gthread", True), ("gevent", True), ("gevent", False)],
    ids=["gthread", "gevent", "gevent-without-the-keep-alive-hooks"],
)
def test_a_restart_does_not_wait_for_kept_alive_connections(
    servers: Servers, server: str, hooks: bool, record_property: pytest.RecordProperty
) -> None:
    project = servers.project(server)
    # The negative control waits for graceful_timeout: a shorter one does as well there.
    extra = ["--graceful-timeout", str(GRACEFUL_TIMEOUT if hooks else 2)]
    if not hooks:
        extra += ["--config", without_keep_alive_hooks(project)]
    app = serve(servers, project, f"resilience-restart-{server}-{hooks}", {}, *extra)
    streams = [KeptAlive(app.port, "/events?count=200&interval=0.1") for _ in range(4)]
    # And a connection that has had its answer and waits for the next request.
    idle = http.client.HTTPConnection(HOST, app.port, timeout=WAIT)
    idle.request("GET", "/static/demo.js")
    idle.getresponse().read()
    try:
        time.sleep(0.3)
        gone_after = restart_gracefully(app, timeout=GRACEFUL_TIMEOUT + 10)
        for stream in streams:
            assert stream.ended()
            assert b": server restarting: reconnect" in stream.body
    finally:
        idle.close()
        for stream in streams:
            stream.conn.close()
    record_property("old_workers_gone_after_seconds", round(gone_after, 3))
    if hooks:
        assert "Worker graceful timeout" not in app.log()
    else:
        # The negative control: the kept-alive connections hold the old worker until
        # graceful_timeout, and gunicorn kills it.
        assert "Worker graceful timeout" in app.log()
