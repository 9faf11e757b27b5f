"""Channels on the real stack: two gunicorn instances ("hosts") of two workers, one Redis.

Subscribers are spread over all four workers (each response names its worker's pid), and
events published through every door (the ``publish()`` and ``publish_many()`` functions in
a job process, ``flask publish`` with an argument or lines of standard input, the HTTP route
on either host, one event or an NDJSON batch) must reach each of them exactly once, in
order, and live: the next event is published only after every subscriber has the previous
one. Then: resuming on the other host, a browser whose worker is killed, Redis going away
and coming back. The generated project's own tests (run by test_render) cover the memory
broker, trimmed history and every refusal in one process.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from harness.client import EventSourceClient, Stream, parse_sse
from harness.redis_stack import RedisServer, redis_binary
from harness.stack import (
    HOST,
    Process,
    Project,
    restart_gracefully,
    start_gunicorn,
    start_nginx,
    stop,
)

from .conftest import SERVERS, Servers, requires_chromium, requires_nginx

pytestmark = [
    pytest.mark.deploy,
    requires_nginx,
    pytest.mark.skipif(redis_binary() is None, reason="apt-get install redis-server"),
]

HERE = Path(__file__).resolve().parent
TOKEN = "deploy-test-publish-token"
ENDPOINTS = (
    {"name": "events", "path": "/events", "style": "decorator", "format": "sse", "session": True},
    {
        "name": "news",
        "path": "/news",
        "style": "decorator",
        "format": "sse",
        "session": True,
        "source": "channel",
    },
    {
        "name": "feed",
        "path": "/feed",
        "style": "wrapper",
        "format": "ndjson",
        "session": False,
        "source": "channel",
    },
)
WAIT = 30.0


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")).running() as server:
        yield server


@dataclass
class ChannelStack:
    project: Project
    redis: RedisServer
    gunicorn_env: dict[str, str]
    hosts: list[Process]
    proxy: Process
    _topics: Iterator[int] = field(default_factory=itertools.count)

    def start_host(self, servers: Servers, name: str, *extra_args: str) -> Process:
        """Another instance of the app on the same Redis (stopped with the session)."""
        return start_host(servers, self.project, self.gunicorn_env, name, *extra_args)

    def topic(self) -> str:
        return f"deploy-{next(self._topics)}-{uuid.uuid4().hex[:8]}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(self.project.root / "src"),
            "FLASK_SECRET_KEY": "test-only-secret-key-" + "x" * 32,
            "FLASK_STREAM_BROKER_URL": self.redis.url,
        }

    def publish_http(self, port: int, topic: str, data: str) -> str:
        status, body = post(port, f"/publish/{topic}", data)
        assert status == 201, body
        return str(json.loads(body)["id"])

    def publish_ndjson(self, port: int, topic: str, data: Sequence[str]) -> list[str]:
        """A batch through the HTTP route: one ``{"data": ...}`` line per event."""
        lines = "".join(json.dumps({"data": each}) + "\n" for each in data)
        status, body = post(port, f"/publish/{topic}", lines, "application/x-ndjson")
        assert status == 201, body
        return [str(event_id) for event_id in json.loads(body)["ids"]]

    def publish_function(self, topic: str, data: Sequence[str]) -> list[str]:
        """``publish()`` from a separate process, as a background job would call it."""
        return self.run(job_publishing(self.project, topic, data)).split()

    def publish_many_function(self, topic: str, data: Sequence[str]) -> list[str]:
        """``publish_many()`` from a separate process: one batch."""
        return self.run(job_publishing(self.project, topic, data, batch=True)).split()

    def publish_cli(self, topic: str, data: str) -> str:
        return self.run(flask_publish(self.project, topic, data))

    def publish_cli_lines(self, topic: str, data: Sequence[str]) -> list[str]:
        """``flask publish TOPIC -`` with one event per line of its standard input."""
        flask = Path(sys.executable).with_name("flask")
        args = [str(flask), "--app", self.project.package, "publish", topic, "-"]
        return self.run(args, stdin="".join(f"{line}\n" for line in data)).split()

    def run(self, args: list[str], stdin: str = "") -> str:
        """Run *args* in the project with its Redis settings; its stdout, stripped."""
        return run_in(self.project, args, self.env(), stdin)


def run_in(project: Project, args: list[str], env: Mapping[str, str], stdin: str = "") -> str:
    """Run *args* in *project*'s root with *env*; its stdout, stripped."""
    out = subprocess.run(
        args,
        cwd=project.root,
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def job_publishing(
    project: Project, topic: str, data: Sequence[str], *, batch: bool = False
) -> list[str]:
    """The command of a job that calls ``publish()`` on *topic* for each of *data* (with
    *batch*, ``publish_many()`` once for all), printing each id; run it in the project's
    root with ``src`` on ``PYTHONPATH``."""
    package = project.package
    if batch:
        function, body = "publish_many", "print(*publish_many(sys.argv[1], sys.argv[2:]))"
    else:
        function, body = (
            "publish",
            "for data in sys.argv[2:]:\n        print(publish(sys.argv[1], data))",
        )
    code = (
        f"import sys\nfrom {package} import create_app\n"
        f"from {package}.channels import {function}\n"
        f"app = create_app()\nwith app.app_context():\n    {body}\n"
    )
    return [sys.executable, "-c", code, topic, *data]


def flask_publish(project: Project, topic: str, data: str) -> list[str]:
    """The ``flask publish`` command line, for the project's root."""
    flask = Path(sys.executable).with_name("flask")
    return [str(flask), "--app", project.package, "publish", topic, data]


def post(port: int, path: str, data: str, media_type: str = "text/plain") -> tuple[int, str]:
    conn = http.client.HTTPConnection(HOST, port, timeout=WAIT)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": media_type}
    try:
        conn.request("POST", path, body=data.encode(), headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@pytest.fixture(scope="session", params=SERVERS)
def channel_stack(
    request: pytest.FixtureRequest,
    servers: Servers,
    redis_server: RedisServer,
    channel_projects: dict[str, Project],
) -> ChannelStack:
    server: str = request.param
    project = channel_projects[server]
    return servers.once(
        f"channel-stack-{server}",
        lambda: start_channel_stack(servers, redis_server, project, server),
    )


def start_channel_stack(
    servers: Servers, redis_server: RedisServer, project: Project, server: str
) -> ChannelStack:
    """The `channel_stack` of *server*: two hosts of *project* and nginx before the first."""
    env = {
        "CHANNEL_APP_PACKAGE": project.package,
        "FLASK_STREAM_BROKER_URL": redis_server.url,
        "FLASK_STREAM_PUBLISH_TOKEN": TOKEN,
        "FLASK_STREAM_HEARTBEAT_SECONDS": "1",
        "FLASK_STREAM_RETRY_MS": "300",
        # Redis going away (the last test) ends the streams 2 s after its last answer;
        # test_resilience.py shows a shorter outage ridden out.
        "FLASK_STREAM_BROKER_RETRY_SECONDS": "2",
    }
    hosts = [start_host(servers, project, env, name) for name in ("a", "b")]
    proxy = start_nginx(
        project, servers.root / f"channels-nginx-{server}", upstream_port=hosts[0].port
    )
    servers.started.append(proxy)
    return ChannelStack(project, redis_server, env, hosts, proxy)


def start_host(
    servers: Servers, project: Project, env: dict[str, str], name: str, *extra_args: str
) -> Process:
    """An instance of the app ("host") of two workers."""
    host = start_gunicorn(
        project,
        log_path=servers.root / f"channels-{project.server}-{name}.log",
        app="channel_app:create_app()",
        pythonpath=[HERE],
        env=env,
        extra_args=["--workers", "2", *extra_args],
    )
    servers.started.append(host)
    return host


class Subscriber:
    """A raw SSE client on its own thread, collecting events (and reset events) as they come."""

    def __init__(self, port: int, topics: Sequence[str], last_id: str | None = None) -> None:
        query = "&".join(f"topic={t}" for t in topics)
        headers = {"Last-Event-ID": last_id} if last_id else {}
        self.stream = Stream(port, f"/news?{query}", headers=headers, timeout=WAIT)
        assert self.stream.status == 200
        self.pid = self.stream.headers["X-Worker-Pid"]
        self.events: list[dict[str, Any]] = []
        self.last_id = ""
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for block in parse_sse(self.stream.lines()):
                if "id" in block:
                    self.last_id = block["id"]
                if "data" in block:
                    self.events.append(block)
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            # Closing the connection from the test thread ends the read in one of these.
            pass
        finally:
            self.ended.set()

    def data(self) -> list[str]:
        return [e["data"] for e in self.events if e.get("event") != "reset"]

    def wait_for(self, count: int, timeout: float = WAIT) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            if self.ended.is_set() and len(self.events) < count:
                break
            time.sleep(0.01)
        return list(self.events)

    def close(self) -> None:
        self.stream.close()
        self._thread.join(timeout=5)


def serving_workers(port: int, count: int = 2) -> None:
    """Wait until *count* workers answer on *port*: a test before may have killed some, and
    their replacements may still be starting on a loaded machine."""
    pids: set[str] = set()
    deadline = time.monotonic() + WAIT
    while len(pids) < count:
        assert time.monotonic() < deadline, f"only workers {pids} answer on port {port}"
        conn = http.client.HTTPConnection(HOST, port, timeout=WAIT)
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            pids.add(response.headers["X-Worker-Pid"])
        finally:
            conn.close()
        time.sleep(0.01)


def spread(stack: ChannelStack, topics: Sequence[str]) -> list[Subscriber]:
    """Subscribers on both hosts until every one of the four workers serves at least one."""
    subscribers: list[Subscriber] = []
    for host in stack.hosts:
        serving_workers(host.port)
        pids: set[str] = set()
        for _ in range(40):
            subscriber = Subscriber(host.port, topics)
            subscribers.append(subscriber)
            pids.add(subscriber.pid)
            if len(pids) == 2 and len(subscribers) % 2 == 0:
                break
    # And two through the generated nginx in front of the first host.
    subscribers += [Subscriber(stack.proxy.port, topics) for _ in range(2)]
    return subscribers


def test_every_door_reaches_every_subscriber_on_every_worker_once_in_order_live(
    channel_stack: ChannelStack,
) -> None:
    topic = channel_stack.topic()
    subscribers = spread(channel_stack, [topic])
    try:
        workers = {(s.stream.conn.port, s.pid) for s in subscribers}
        assert len({pid for port, pid in workers if port != channel_stack.proxy.port}) == 4
        a, b = (host.port for host in channel_stack.hosts)
        doors = [
            ("http on host a", lambda d: [channel_stack.publish_http(a, topic, d)]),
            ("http on host b", lambda d: [channel_stack.publish_http(b, topic, d)]),
            ("publish() in a job", lambda d: channel_stack.publish_function(topic, [d, d + "+"])),
            ("flask publish", lambda d: [channel_stack.publish_cli(topic, d)]),
            (
                "an NDJSON batch on host b",
                lambda d: channel_stack.publish_ndjson(b, topic, [d, d + "+"]),
            ),
            (
                "publish_many() in a job",
                lambda d: channel_stack.publish_many_function(topic, [d, d + "+"]),
            ),
            ("flask publish -", lambda d: channel_stack.publish_cli_lines(topic, [d, d + "+"])),
        ]
        expected: list[str] = []
        ids: list[str] = []
        for name, door in doors:
            new_ids = door(f"via {name}")
            ids += new_ids
            expected += [f"via {name}", f"via {name}+"][: len(new_ids)]
            # Live: every subscriber has it before anything else is published.
            for subscriber in subscribers:
                subscriber.wait_for(len(expected))
                assert subscriber.data() == expected, f"worker {subscriber.pid} after {name}"
        for subscriber in subscribers:
            assert [e["id"] for e in subscriber.events] == ids
            assert not subscriber.ended.is_set()
    finally:
        for subscriber in subscribers:
            subscriber.close()


def test_a_client_resumes_on_the_other_host_exactly_once(channel_stack: ChannelStack) -> None:
    topics = [channel_stack.topic(), channel_stack.topic()]
    a, b = (host.port for host in channel_stack.hosts)
    first = Subscriber(a, topics)
    channel_stack.publish_http(a, topics[0], "x1")
    channel_stack.publish_http(b, topics[1], "y1")
    assert [e["data"] for e in first.wait_for(2)] == ["x1", "y1"]
    last_id = first.last_id
    first.close()
    for topic, data in ((0, "x2"), (1, "y2"), (0, "x3")):
        channel_stack.publish_http(a, topics[topic], data)

    resumed = Subscriber(b, topics, last_id)
    ignoring_ids = Subscriber(b, topics)
    try:
        channel_stack.publish_http(b, topics[1], "y3")
        got = [e["data"] for e in resumed.wait_for(4)]
        assert sorted(got) == ["x2", "x3", "y2", "y3"]
        assert [d for d in got if d[0] == "x"] == ["x2", "x3"]
        assert got[-1] == "y3"
        # The negative control: the same host without the id has lost what came meanwhile.
        assert [e["data"] for e in ignoring_ids.wait_for(1)] == ["y3"]
    finally:
        resumed.close()
        ignoring_ids.close()


@requires_chromium
def test_a_browser_whose_worker_is_killed_gets_every_event_once(
    browser: object,
    channel_stack: ChannelStack,
) -> None:
    topic = channel_stack.topic()
    a, b = channel_stack.hosts
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.route(
        f"{a.url}/blank",
        lambda route: route.fulfill(body="<html></html>", content_type="text/html"),
    )
    try:
        page.goto(f"{a.url}/blank", timeout=10_000)
        page.evaluate(
            """(topic) => {
                window.got = []; window.opens = 0;
                const source = new EventSource(`/news?topic=${topic}`);
                source.onopen = () => { window.opens += 1; };
                source.onmessage = (event) => window.got.push(event.data);
            }""",
            topic,
        )
        page.wait_for_function("() => window.opens === 1", timeout=10_000)
        for n in range(3):
            channel_stack.publish_http(b.port, topic, f"before {n}")
        page.wait_for_function("() => window.got.length === 3", timeout=10_000)
        # Kill every worker of host a: whichever holds the stream dies mid-stream.
        for pid in a.children():
            os.kill(pid, signal.SIGKILL)
        for n in range(3):
            channel_stack.publish_http(b.port, topic, f"while down {n}")
        try:
            page.wait_for_function("() => window.opens >= 2", timeout=20_000)
        except Exception as error:  # Playwright's TimeoutError: show what host a went through
            raise AssertionError(f"no reconnection: {error}\n{a.log()[-4000:]}") from error
        channel_stack.publish_http(b.port, topic, "after")
        page.wait_for_function("() => window.got.length >= 7", timeout=20_000)
        time.sleep(0.5)  # room for a duplicate to show up, were there one
        got = page.evaluate("() => window.got")
    finally:
        context.close()
    assert got == [f"before {n}" for n in range(3)] + [f"while down {n}" for n in range(3)] + [
        "after"
    ]
    # The stack is shared: leave it with both of host a's workers serving again.
    serving_workers(a.port)


@requires_chromium
def test_the_demo_pages_publish_box_reaches_a_tab_on_the_other_host(
    browser: object,
    channel_stack: ChannelStack,
) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    try:
        tabs = [context.new_page() for _ in channel_stack.hosts]
        for tab, host in zip(tabs, channel_stack.hosts, strict=True):
            tab.goto(f"{host.url}/", timeout=10_000)
            # The demo page opens a stream on demand.
            tab.locator("#news > p button").click()
            tab.wait_for_function(
                "() => document.querySelector('#news .status').textContent === 'open'",
                timeout=10_000,
            )
        box = tabs[0].locator("#news form.publish")
        box.locator("input[name=data]").fill("hello, both tabs")
        box.locator("input[name=token]").fill(TOKEN)
        box.locator("button").click()
        for tab in tabs:
            tab.wait_for_function(
                """() => [...document.querySelectorAll('#news .events li')]
                    .some((item) => item.textContent.endsWith(' hello, both tabs'))""",
                timeout=10_000,
            )
        assert box.locator(".publish-status").inner_text().startswith("published news:")
    finally:
        context.close()


def test_a_restart_ends_channel_streams_and_subscribers_resume_exactly_once(
    channel_stack: ChannelStack, servers: Servers, record_property: pytest.RecordProperty
) -> None:
    """gunicorn HUP under open channel streams, while events are published on another host.

    The old workers' SIGTERM hook ends every stream with a retry hint; each client
    reconnects with ``Last-Event-ID`` and the new workers replay what it missed. Negative
    control: a client that ignores ids loses what was published while it was away.
    """
    count, graceful_timeout = 40, 3
    app = channel_stack.start_host(servers, "restart", "--graceful-timeout", str(graceful_timeout))
    topic = channel_stack.topic()
    last = f"n{count - 1}"
    clients = [EventSourceClient(app.port, f"/news?topic={topic}", until=last) for _ in range(8)]
    ignoring = EventSourceClient(
        app.port, f"/news?topic={topic}", send_last_event_id=False, until=last
    )
    everyone = [*clients, ignoring]
    threads = [threading.Thread(target=c.run, daemon=True) for c in everyone]
    try:
        for thread in threads:
            thread.start()
        for client in everyone:
            assert client.opened.wait(WAIT), client.error

        def publish_all() -> None:
            for n in range(count):
                channel_stack.publish_http(channel_stack.hosts[1].port, topic, f"n{n}")
                time.sleep(0.1)

        publisher = threading.Thread(target=publish_all, daemon=True)
        publisher.start()
        deadline = time.monotonic() + WAIT
        while min(len(c.received) for c in everyone) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        gone_after = restart_gracefully(app, timeout=graceful_timeout + 10)
        publisher.join(timeout=WAIT)
        for thread in threads:
            thread.join(timeout=WAIT)
    finally:
        stop(app)

    for client in clients:
        assert client.error is None, client.error
        # Nothing lost, nothing twice, in order, across the restart.
        assert client.data == [f"n{n}" for n in range(count)]
        assert client.connections >= 2
        assert set(client.hints) == {": server restarting: reconnect"}
    assert "Worker graceful timeout" not in app.log()
    assert ignoring.error is None, ignoring.error
    assert ignoring.finished
    assert len(ignoring.data) < count
    record_property("old_workers_gone_after_seconds", round(gone_after, 3))


def test_gunicorn_refuses_two_workers_with_the_memory_broker(
    channel_stack: ChannelStack, tmp_path: Path
) -> None:
    env = {**channel_stack.env(), "FLASK_STREAM_BROKER_URL": "memory://"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(channel_stack.project.gunicorn_conf),
            "--bind",
            f"{HOST}:0",
            "--workers",
            "2",
        ],
        cwd=channel_stack.project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "events would not cross workers" in result.stdout + result.stderr


def topics_read(url: str, topics: Sequence[str], seconds: float) -> set[str]:
    """Those of *topics* that a worker's reader asks Redis for (XREAD) within *seconds*,
    returned as soon as all of them are.

    Redis's MONITOR shows every command with its keys; each worker's reader issues an XREAD
    of the topics its subscribers follow at least once a heartbeat interval (1 s here). A
    second and a half without a command of any kind: no reader has a topic to read.
    """
    client = redis.Redis.from_url(url, socket_timeout=1.5, decode_responses=True)
    found: set[str] = set()
    deadline = time.monotonic() + seconds
    try:
        with client.monitor() as monitor:
            while time.monotonic() < deadline and found != set(topics):
                command = monitor.next_command()["command"]
                if command.upper().startswith("XREAD"):
                    found |= {topic for topic in topics if topic in command}
    except redis.TimeoutError:
        pass
    finally:
        client.close()
    return found


def test_a_worker_reads_no_topic_for_subscribers_that_have_left(
    channel_stack: ChannelStack,
) -> None:
    topics = [channel_stack.topic() for _ in range(4)]
    subscribers = [
        Subscriber(host.port, [topic]) for host in channel_stack.hosts for topic in topics
    ]
    try:
        # The control: while their subscribers listen, the workers read every topic.
        assert topics_read(channel_stack.redis.url, topics, WAIT) == set(topics)
    finally:
        # All connections at once; each reading thread ends at its stream's next line.
        for subscriber in subscribers:
            subscriber.stream.close()
        for subscriber in subscribers:
            subscriber.close()
    # Each worker notices a departed client at its next heartbeat and unsubscribes it; from
    # then on its reader leaves the topic alone. A subscription left behind would be read
    # for nobody, one more for every client that ever left.
    deadline = time.monotonic() + WAIT
    while (still := topics_read(channel_stack.redis.url, topics, 1.5)) and (
        time.monotonic() < deadline
    ):
        pass
    assert not still, f"still read after their subscribers left: {sorted(still)}"


def test_redis_going_away_ends_streams_cleanly_and_delivery_resumes(
    channel_stack: ChannelStack,
) -> None:
    """Runs last in this module: it restarts the shared Redis (empty, as after a crash)."""
    topic = channel_stack.topic()
    a, b = (host.port for host in channel_stack.hosts)
    before = [Subscriber(port, [topic]) for port in (a, b)]
    channel_stack.publish_http(a, topic, "before")
    for subscriber in before:
        assert [e["data"] for e in subscriber.wait_for(1)] == ["before"]
    old_id = before[0].last_id

    channel_stack.redis.stop()
    try:
        for subscriber in before:
            assert subscriber.ended.wait(WAIT), "a stream hung after Redis went away"
        status, body = post(a, f"/publish/{topic}", "lost")
        assert status == 503
        assert json.loads(body) == {"error": "the event broker is unavailable: retry later"}
        # A subscriber arriving now gets a complete, short stream telling it to retry.
        with Stream(b, f"/news?topic={topic}", timeout=WAIT) as early:
            assert early.status == 200
            lines = list(early.lines())
        assert lines[0] == ": the event broker is unavailable: reconnect"
        assert 300 <= int(lines[1].removeprefix("retry: ")) <= 600
        # No worker hangs: the ticks endpoint still answers on both hosts.
        for port in (a, b):
            with Stream(port, "/events?count=1&interval=0", timeout=WAIT) as ticks:
                assert ticks.status == 200
                assert any(line.startswith("data:") for line in ticks.lines())
    finally:
        channel_stack.redis.start()
    for subscriber in before:
        subscriber.close()

    # Back, without restarting the app: new subscribers on both hosts get live events, and
    # the old id (from the log Redis lost) gets a reset instead of a wrong resume.
    after = [Subscriber(port, [topic]) for port in (a, b)]
    returning = Subscriber(a, [topic], old_id)
    try:
        # The reset moves the client to the end of the log as its replay finds it (the
        # replay runs once the response has started): an event published before that is
        # covered by the reset, so the event that must follow it is published after it.
        assert [e.get("event") for e in returning.wait_for(1)] == ["reset"]
        channel_stack.publish_http(b, topic, "after")
        for subscriber in after:
            assert [e["data"] for e in subscriber.wait_for(1)] == ["after"]
        seen = returning.wait_for(2)
        assert [e.get("event") for e in seen] == ["reset", None]
        assert seen[1]["data"] == "after"
    finally:
        for subscriber in [*after, returning]:
            subscriber.close()
