"""What one client, or one fault, must not do to a worker: real gunicorn, real redis-server.

- A client that stops reading loses its stream within ``FLASK_STREAM_SEND_TIMEOUT_SECONDS``
  and gives its place back (gthread and gevent); without the send timeout it holds the
  place for as long as it keeps the connection open.
- Redis stalling (SIGSTOP) for longer than one read's timeout but less than
  ``FLASK_STREAM_BROKER_RETRY_SECONDS`` ends no stream and loses no event; the same stall
  with a shorter retry budget ends the streams with a retry hint.
- A restart while clients keep their connections alive (as browsers and nginx do) lets the
  old worker go at once, not after ``graceful_timeout`` (gevent kept it until then).
- A worker killed, then a HUP, while Redis is down: the new workers start without it and
  the server stays up; with the start-up check on for every worker, it stops.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping

import pytest

from harness.client import Stream
from harness.redis_stack import RedisServer, redis_binary
from harness.stack import HOST, Process, Project, restart_gracefully, start_gunicorn

from .conftest import SERVERS, Servers
from .test_channels import TOKEN, Subscriber, post, start_host

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


# ------------------------------------------------------------- a client that stops reading
SEND_TIMEOUT = 1.0
# How long after the burst a new stream must be admitted: the send timeout, plus room for a
# loaded machine. The negative control waits as long and is refused throughout.
BOUND = SEND_TIMEOUT + 5.0


def silent_client(port: int, path: str) -> socket.socket:
    """Ask for a stream, read its headers, then read nothing, with a small receive buffer so
    that the buffers between it and gunicorn fill quickly. The caller closes it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(WAIT)
    sock.connect((HOST, port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 200 "), head
    return sock


def admitted_within(port: int, seconds: float) -> float | None:
    """Seconds until this worker admits a new stream (a short ticks stream), None if it
    turns every one away for *seconds*."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        with Stream(port, "/events?count=1&interval=0", timeout=WAIT) as stream:
            body = "\n".join(stream.lines())
        if "open streams, its limit" not in body:
            assert "data:" in body, body
            return time.monotonic() - started
        time.sleep(0.1)
    return None


@pytest.mark.parametrize(
    ("server", "send_timeout"),
    [("gthread", SEND_TIMEOUT), ("gevent", SEND_TIMEOUT), ("gthread", 3600.0)],
    ids=["gthread", "gevent", "gthread-without-a-send-timeout"],
)
def test_a_client_that_stops_reading_loses_its_stream_not_the_worker(
    servers: Servers,
    channel_projects: dict[str, Project],
    server: str,
    send_timeout: float,
    record_property: pytest.RecordProperty,
) -> None:
    """One place per worker, taken by a subscriber of a busy topic that stops reading.

    Its stream ends within the send timeout once the socket buffers are full (a few MB are
    published at once to fill them), and the next stream is admitted. The negative control
    is the same with a send timeout of an hour: the place stays taken.
    """
    app = serve(
        servers,
        channel_projects[server],
        f"resilience-silent-{server}-{send_timeout:g}",
        {
            "FLASK_STREAM_MAX_OPEN": "1",
            "FLASK_STREAM_SEND_TIMEOUT_SECONDS": str(send_timeout),
            "FLASK_STREAM_PUBLISH_TOKEN": TOKEN,
        },
    )
    with contextlib.closing(silent_client(app.port, "/news?topic=busy")):
        for _ in range(60):
            status, body = post(app.port, "/publish/busy", "x" * 60_000)
            assert status == 201, body
        admitted_after = admitted_within(app.port, BOUND)

        if send_timeout > BOUND:
            assert admitted_after is None, "the silent client's place was given back"
            return
        assert admitted_after is not None, "the silent client still holds the worker's place"
        record_property("admitted_after_seconds", round(admitted_after, 2))
        # The stream ended for that reason, and gunicorn's log says what happened in one line.
        app.wait_for_log(r"stream ended: endpoint=news reason=send_timeout")
        app.wait_for_log(r"dropped a client that read nothing for FLASK_STREAM_SEND_TIMEOUT")
        assert "Traceback" not in app.log()


# --------------------------------------------------------------------- a stalled Redis
BLOCK_SECONDS = 1.0  # FLASK_STREAM_HEARTBEAT_SECONDS: the reader's XREAD blocks this long
READ_TIMEOUT = BLOCK_SECONDS + 5.0  # the reader's socket timeout: the block plus 5 s
STALL = READ_TIMEOUT + 1.5


@pytest.fixture(scope="module")
def stalling_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this module's own: the test stops it with SIGSTOP."""
    if redis_binary() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with RedisServer(tmp_path_factory.mktemp("stalling-redis")).running() as server:
        yield server


@contextlib.contextmanager
def stalled(server: RedisServer) -> Iterator[None]:
    """Redis stops answering (its process is stopped) until the block ends."""
    assert server.popen is not None
    os.kill(server.popen.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.popen.pid, signal.SIGCONT)


def test_redis_stalling_within_the_retry_budget_ends_no_stream_and_loses_no_event(
    servers: Servers, channel_projects: dict[str, Project], stalling_redis: RedisServer
) -> None:
    """One stall, longer than a read's timeout, seen by three apps on the same Redis: two
    (gthread, gevent) whose retry budget outlasts it, and one whose budget is shorter."""
    env = {
        "FLASK_STREAM_BROKER_URL": stalling_redis.url,
        "FLASK_STREAM_PUBLISH_TOKEN": TOKEN,
        "FLASK_STREAM_HEARTBEAT_SECONDS": str(BLOCK_SECONDS),
        "FLASK_STREAM_RETRY_MS": "1000",
    }
    patient = [
        serve(
            servers,
            channel_projects[server],
            f"resilience-stall-{server}",
            {**env, "FLASK_STREAM_BROKER_RETRY_SECONDS": str(STALL + 15)},
        )
        for server in SERVERS
    ]
    impatient = serve(
        servers,
        channel_projects["gthread"],
        "resilience-stall-impatient",
        {**env, "FLASK_STREAM_BROKER_RETRY_SECONDS": "2"},
    )
    topic = f"stall-{time.monotonic_ns()}"
    subscribers = [Subscriber(app.port, [topic]) for app in patient]
    control = Stream(impatient.port, f"/news?topic={topic}", timeout=WAIT)
    try:
        publish = patient[0].port
        before = [f"before {n}" for n in range(3)]
        for data in before:
            assert post(publish, f"/publish/{topic}", data)[0] == 201
        for subscriber in subscribers:
            assert subscriber.wait_for(len(before))
        with stalled(stalling_redis):
            time.sleep(STALL)
        after = [f"after {n}" for n in range(3)]
        for data in after:
            assert post(publish, f"/publish/{topic}", data)[0] == 201
        for subscriber, app in zip(subscribers, patient, strict=True):
            subscriber.wait_for(len(before) + len(after))
            assert subscriber.data() == before + after, app.log()[-3000:]
            assert not subscriber.ended.is_set()
            # The stall was long enough for a read to fail, and the reader rode it out.
            assert "streams kept open" in app.log()
            assert "streams ended" not in app.log()
        # The control: the same stall, a budget shorter than it, and the stream was ended,
        # with a hint that spreads the clients' returns.
        lines = list(control.lines())
        ended = ": closed: lost the connection to the broker; reconnect to resume"
        assert ended in lines, lines
        retry = lines[lines.index(ended) + 1]
        assert 1000 <= int(retry.removeprefix("retry: ")) <= 2000
        assert "streams ended" in impatient.log()
    finally:
        control.close()
        for subscriber in subscribers:
            subscriber.close()


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


# ------------------------------------------------ workers replaced while Redis is away
def new_workers(host: Process, old: set[int], count: int = 2) -> set[int]:
    """Wait until *host* runs *count* workers, none of them in *old*."""
    deadline = time.monotonic() + WAIT
    while True:
        workers = set(host.children())
        if len(workers) == count and not workers & old:
            return workers
        assert host.popen.poll() is None, host.log()[-3000:]
        assert time.monotonic() < deadline, host.log()[-3000:]
        time.sleep(0.1)


def test_workers_replaced_while_redis_is_away_keep_the_server_up(
    servers: Servers, channel_projects: dict[str, Project], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """gunicorn stops the whole server when a worker fails to start. A worker killed (as by
    the kernel's OOM killer), then a HUP, while Redis is down: every worker is new, started
    without the broker; clients are told to come back, and are served once Redis is back.
    The control, the start-up check on for every worker: the same kill stops the server."""
    if redis_binary() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    redis_server = RedisServer(tmp_path_factory.mktemp("replaced-redis"))
    with redis_server.running():
        env = {
            "CHANNEL_APP_PACKAGE": channel_projects["gthread"].package,
            "FLASK_STREAM_BROKER_URL": redis_server.url,
            "FLASK_STREAM_PUBLISH_TOKEN": TOKEN,
            "FLASK_STREAM_RETRY_MS": "1000",
            # A heartbeat a second: a subscriber's reading thread ends soon after its close.
            "FLASK_STREAM_HEARTBEAT_SECONDS": "1",
        }
        hosts = {
            server: start_host(servers, channel_projects[server], env, "replaced")
            for server in SERVERS
        }
        control = start_host(
            servers,
            channel_projects["gthread"],
            {**env, "FLASK_STREAM_BROKER_CHECK_AT_START": "true"},
            "replaced-control",
        )
        redis_server.stop()
        killed = {}
        for host in [*hosts.values(), control]:
            killed[host.pid] = host.children()[0]
            os.kill(killed[host.pid], signal.SIGKILL)
        for host in hosts.values():
            before_hup = new_workers(host, {killed[host.pid]})
            os.kill(host.pid, signal.SIGHUP)
            new_workers(host, before_hup)
        topic = f"replaced-{time.monotonic_ns()}"
        for host in hosts.values():
            # In gunicorn's log format, as the app's other lines.
            assert re.search(r"\[WARNING\] starting without the event broker", host.log())
            # Both workers, as the kernel spreads the connections: each says come back.
            for _ in range(4):
                with Stream(host.port, f"/news?topic={topic}", timeout=WAIT) as stream:
                    assert stream.status == 200
                    lines = list(stream.lines())
                assert lines[0] == ": the event broker is unavailable: reconnect", lines
        # The control: its replacement could not start, and gunicorn stopped the server.
        assert control.popen.wait(timeout=WAIT) != 0
        assert "Worker failed to boot" in control.log()

        redis_server.start()
        gthread, gevent = (hosts[server].port for server in SERVERS)
        subscribers = [Subscriber(port, [topic]) for port in (gthread, gevent)]
        try:
            assert post(gevent, f"/publish/{topic}", "back")[0] == 201
            for subscriber in subscribers:
                assert [e["data"] for e in subscriber.wait_for(1)] == ["back"]
        finally:
            for subscriber in subscribers:
                subscriber.close()
