"""Metrics, health checks and stream-end lines on the real stack: gunicorn with two workers
(gthread and gevent), a redis-server, and the master's metrics listener on 127.0.0.1.

One scenario per worker class drives every stream to each of its ends (complete, client
gone, lifetime, send timeout, fell behind, broker lost, shutdown), gets streams refused (the
per-worker cap, no broker), resumes with a replay and with a lost id (a reset), publishes
through every door (the route, ``publish()`` in a job, ``flask publish``, the last two in
processes of their own sharing the metrics directory), stops Redis (``/readyz`` fails, then
recovers) and restarts the workers. Then one scrape of the master must add up, across the
workers and the other processes: with what the clients received, with what the test did,
and with the log's stream-end lines. The negative control runs the same checker against
workers that each keep a metrics directory of their own.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.redis_stack import RedisServer, redis_binary
from harness.stack import (
    HOST,
    Process,
    Project,
    free_port,
    restart_gracefully,
    start_gunicorn,
    wait_until_answers,
)

from .conftest import PROXIES, SERVERS, Servers, require_proxy
from .test_channels import ENDPOINTS, TOKEN, flask_publish, job_publishing, run_in

pytestmark = [
    pytest.mark.deploy,
    pytest.mark.skipif(redis_binary() is None, reason="apt-get install redis-server"),
]

HERE = Path(__file__).resolve().parent
WAIT = 30.0
MAX_OPEN = 3
LIFETIME = 3.0
SEND_TIMEOUT = 1.0
QUEUE_SIZE = 64


# ----------------------------------------------------------------------------- clients
class Client:
    """A stream read on a thread of its own, over a raw socket: closing it is a client that
    leaves (the server sees the connection end). *silent* clients read nothing after the
    headers, with a small receive buffer, so that the buffers fill quickly."""

    def __init__(
        self,
        port: int,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        silent: bool = False,
    ) -> None:
        self.path = path
        self.sock = socket.socket()
        if silent:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(WAIT)
        self.sock.connect((HOST, port))
        head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{head}\r\n".encode())
        self.raw = b""
        while b"\r\n\r\n" not in self.raw:
            got = self.sock.recv(1 if silent else 65536)
            assert got, f"{path}: the connection closed before the headers"
            self.raw += got
        head_bytes, _, self.raw = self.raw.partition(b"\r\n\r\n")
        status, *fields = head_bytes.decode().split("\r\n")
        self.status = int(status.split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
        self.pid = self.headers.get("x-worker-pid", "")
        self.ended = threading.Event()
        if silent:
            return
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while got := self.sock.recv(65536):
                self.raw += got
        except OSError:
            pass  # closed by the test: the client left
        finally:
            self.ended.set()

    @property
    def body(self) -> bytes:
        """The body as the app wrote it, as far as it has come."""
        return self._body()[0]

    @property
    def complete(self) -> bool:
        """Whether the whole response is in (the connection may stay open: keep-alive)."""
        return self._body()[1]

    def _body(self) -> tuple[bytes, bool]:
        if "content-length" in self.headers:
            length = int(self.headers["content-length"])
            return self.raw[:length], len(self.raw) >= length
        # A stream is chunked: the complete chunks, and whether the last one came.
        body, rest = b"", self.raw
        while b"\r\n" in rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                return body, True
            if len(rest) < size + 2:
                break
            body, rest = body + rest[:size], rest[size + 2 :]
        return body, False

    @property
    def refused(self) -> bool:
        """An SSE stream turned away: its whole body is a comment and a retry hint."""
        return self.body.startswith(b": ")

    def records(self) -> list[dict[str, str]]:
        """The events received (SSE blocks or NDJSON records), the stream's own included."""
        text = self.body.decode()
        if self.headers.get("content-type", "").startswith("application/x-ndjson"):
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        found = []
        for block in text.split("\n\n"):
            fields = [line.partition(": ") for line in block.split("\n") if line[:1] != ":"]
            record = {name: value for name, _, value in fields if name}
            if "data" in record:
                found.append(record)
        return found

    def events(self) -> int:
        """Events received, as the server counts them: no reset, no end marker."""
        return sum(1 for r in self.records() if r.get("event") not in ("reset", "end"))

    def resets(self) -> int:
        return sum(1 for r in self.records() if r.get("event") == "reset")

    def wait_for(self, condition: Callable[[Client], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not condition(self):
            assert time.monotonic() < deadline, f"{self.path}: {what}; got {self.body[-500:]!r}"
            time.sleep(0.01)

    def wait_until_ended(self) -> None:
        """Wait for the end of the response, then close the connection."""
        self.wait_for(lambda c: c.complete or c.ended.is_set(), "the response did not end")
        self.leave()

    def leave(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.ended.wait(WAIT)


# -------------------------------------------------------------------------------- stack
@dataclass
class Ledger:
    """What the test did, as the metrics must show it."""

    started: Counter[str] = field(default_factory=Counter)
    ended: Counter[tuple[str, str]] = field(default_factory=Counter)
    refused: Counter[tuple[str, str]] = field(default_factory=Counter)
    published: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    clients: list[tuple[str, Client]] = field(default_factory=list)
    # Streams whose client read nothing: the log line tells what the server sent them.
    unread: Counter[str] = field(default_factory=Counter)

    def stream(self, endpoint: str, client: Client, reason: str) -> Client:
        self.started[endpoint] += 1
        self.ended[endpoint, reason] += 1
        self.clients.append((endpoint, client))
        return client


@dataclass
class MetricsStack:
    project: Project
    app: Process
    redis: RedisServer
    env: dict[str, str]
    metrics_port: int
    metrics_dir: Path
    ledger: Ledger = field(default_factory=Ledger)

    def topic(self) -> str:
        return f"metrics-{uuid.uuid4().hex[:10]}"

    def publish_route(self, topic: str, data: str) -> int:
        conn = http.client.HTTPConnection(HOST, self.app.port, timeout=WAIT)
        try:
            conn.request("POST", f"/publish/{topic}", body=data.encode(), headers=AUTH)
            status = conn.getresponse().status
        finally:
            conn.close()
        if status == 201:
            self.ledger.published["route"] += 1
        elif status == 503:
            self.ledger.failed["route"] += 1
        return status

    def publish_job(self, topic: str, data: list[str]) -> list[str]:
        """``publish()`` from a process of its own, as a background job calls it."""
        ids = self.run(job_publishing(self.project, topic, data)).split()
        self.ledger.published["function"] += len(ids)
        return ids

    def publish_cli(self, topic: str, data: str) -> str:
        event_id = self.run(flask_publish(self.project, topic, data))
        self.ledger.published["cli"] += 1
        return event_id

    def run(self, args: list[str]) -> str:
        """Run *args* in the project with the app's settings; its stdout, stripped."""
        env = {**os.environ, **self.env, "PYTHONPATH": str(self.project.root / "src")}
        return run_in(self.project, args, env)

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample the master serves, by name and labels (pids left in)."""
        conn = http.client.HTTPConnection(HOST, self.metrics_port, timeout=WAIT)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def wait_for_ended_lines(self, count: int) -> None:
        """Wait until the app has logged *count* stream ends (its places given back)."""
        deadline = time.monotonic() + WAIT
        while len(self.ended_lines()) < count:
            assert time.monotonic() < deadline, f"fewer than {count} stream-end lines"
            time.sleep(0.05)

    def ended_lines(self) -> list[dict[str, Any]]:
        """The app's stream-end lines, from its log (text or JSON lines)."""
        found = []
        for line in self.app.log().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record["message"].startswith("stream ended: "):
                    found.append(record)
            elif match := ENDED_LINE.search(line):
                endpoint, reason, events, replayed = match.groups()
                found.append(
                    {
                        "endpoint": endpoint,
                        "reason": reason,
                        "events": int(events),
                        "replayed": int(replayed),
                    }
                )
        return found


AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENDED_LINE = re.compile(
    r"stream ended: endpoint=(\S+) reason=(\S+) seconds=\S+ events=(\d+) replayed=(\d+)"
)


def metrics_env(redis: RedisServer, metrics_dir: Path, metrics_port: int) -> dict[str, str]:
    return {
        "FLASK_SECRET_KEY": "test-only-secret-key-" + "x" * 32,
        "FLASK_STREAM_BROKER_URL": redis.url,
        "FLASK_STREAM_PUBLISH_TOKEN": TOKEN,
        "FLASK_STREAM_HEARTBEAT_SECONDS": "0.5",
        "FLASK_STREAM_RETRY_MS": "300",
        "FLASK_STREAM_MAX_OPEN": str(MAX_OPEN),
        "FLASK_STREAM_MAX_SECONDS": str(LIFETIME),
        "FLASK_STREAM_SEND_TIMEOUT_SECONDS": str(SEND_TIMEOUT),
        # Above the 60 events the silent client is sent (it must hit the send timeout, not
        # fall behind), below the burst that a stopped worker misses.
        "FLASK_STREAM_QUEUE_SIZE": str(QUEUE_SIZE),
        "FLASK_STREAM_BROKER_RETRY_SECONDS": "1",
        # Shared with the job and `flask publish`, which run beside gunicorn.
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_BIND": f"{HOST}:{metrics_port}",
    }


@pytest.fixture(scope="module")
def metrics_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this module's own: the scenario stops and restarts it."""
    with RedisServer(tmp_path_factory.mktemp("metrics-redis")).running() as server:
        yield server


def start(
    servers: Servers,
    project: Project,
    redis: RedisServer,
    name: str,
    *,
    extra_env: Mapping[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> MetricsStack:
    """The channel project under gunicorn, two workers, its metrics on a free port."""
    metrics_dir = servers.root / f"{name}-metrics"
    metrics_dir.mkdir()
    metrics_port = free_port()
    env = {**metrics_env(redis, metrics_dir, metrics_port), **(extra_env or {})}
    app = start_gunicorn(
        project,
        log_path=servers.root / f"{name}.log",
        app="channel_app:create_app()",
        pythonpath=[HERE],
        env={**env, "CHANNEL_APP_PACKAGE": project.package},
        extra_args=["--workers", "2", *extra_args],
    )
    servers.started.append(app)
    app.wait_for_log(r"Serving metrics at ")
    return MetricsStack(project, app, redis, env, metrics_port, metrics_dir)


# --------------------------------------------------------------------------- the checker
def discrepancies(stack: MetricsStack) -> list[str]:
    """Every way the scrape fails to add up; empty when it all does."""
    ledger = stack.ledger
    scraped = stack.scrape()
    problems: list[str] = []

    def total(name: str, **labels: str) -> float:
        wanted = set(labels.items())
        return sum(v for (n, ls), v in scraped.items() if n == name and wanted <= ls)

    def expect(name: str, expected: float, **labels: str) -> None:
        got = total(name, **labels)
        if got != expected:
            problems.append(f"{name}{labels}: expected {expected:g}, scraped {got:g}")

    lines = stack.ended_lines()
    endpoints = {e["name"] for e in ENDPOINTS}
    for endpoint in endpoints:
        expect("streams_started_total", ledger.started[endpoint], endpoint=endpoint)
        expect("streams_open", 0, endpoint=endpoint)
        clients = [c for e, c in ledger.clients if e == endpoint]
        expect(
            "stream_events_sent_total",
            sum(c.events() for c in clients) + ledger.unread[endpoint],
            endpoint=endpoint,
        )
        received = sum(len(c.body) for c in clients)
        sent = total("stream_sent_bytes_total", endpoint=endpoint)
        # Exact unless a client left or read nothing: the server counts what it wrote.
        exact = not [
            r for (e, r) in ledger.ended if e == endpoint and r in ("client_gone", "send_timeout")
        ]
        if sent < received or (exact and sent != received):
            problems.append(
                f"stream_sent_bytes_total[{endpoint}]: {sent:g}, clients read {received}"
            )
    reasons = {reason for _, reason in ledger.ended} | {r["reason"] for r in lines}
    for endpoint in endpoints:
        for reason in reasons:
            expected = ledger.ended[endpoint, reason]
            expect("streams_ended_total", expected, endpoint=endpoint, reason=reason)
            logged = sum(1 for r in lines if (r["endpoint"], r["reason"]) == (endpoint, reason))
            if logged != expected:
                problems.append(
                    f"log lines of {endpoint} ending {reason}: {logged}, not {expected}"
                )
    for (endpoint, reason), count in ledger.refused.items():
        expect("streams_refused_total", count, endpoint=endpoint, reason=reason)
    for door in ("function", "cli", "route"):
        expect("channel_publish_duration_seconds_count", ledger.published[door], door=door)
        expect("channel_publish_failures_total", ledger.failed[door], door=door)
    # Open-stream gauges of live workers only: the old workers' left with them.
    live = {str(pid) for pid in stack.app.children()}
    pids = {dict(ls).get("pid") for (n, ls) in scraped if n == "streams_open"}
    if not pids or not pids <= live:
        problems.append(f"streams_open series of pids {pids}, workers alive: {live}")
    return problems


# ----------------------------------------------------------------------------- scenario
def open_until_refused(stack: MetricsStack, path: str) -> list[Client]:
    """Streams until every worker holds MAX_OPEN and has turned one away."""
    admitted: dict[str, list[Client]] = {}
    refused: Counter[str] = Counter()
    for _ in range(60):
        client = Client(stack.app.port, path)
        client.wait_for(lambda c: bool(c.body), "no first byte")
        if client.refused:
            client.wait_until_ended()
            refused[client.pid] += 1
            stack.ledger.refused["news", "cap"] += 1
        else:
            admitted.setdefault(client.pid, []).append(client)
        if len(admitted) == 2 and all(refused[pid] for pid in admitted):
            break
    assert len(admitted) == 2, "both workers must hold streams"
    assert all(len(clients) == MAX_OPEN for clients in admitted.values())
    assert all(refused[pid] for pid in admitted), f"refusals by worker: {refused}"
    return [client for clients in admitted.values() for client in clients]


def scenario(stack: MetricsStack) -> None:  # noqa: PLR0915  (one story, told in order)
    ledger = stack.ledger
    port = stack.app.port
    # Complete: ticks to their end.
    for _ in range(2):
        ticks = ledger.stream("events", Client(port, "/events?count=3&interval=0"), "complete")
        ticks.wait_until_ended()
    # A client has the whole body a moment before the server gives the stream's place back
    # (and logs its end): the cap below counts on every place being free.
    stack.wait_for_ended_lines(2)

    # The cap, then clients that leave and streams that reach their lifetime.
    topic = stack.topic()
    held = open_until_refused(stack, f"/news?topic={topic}")
    assert stack.publish_route(topic, "to everyone") == 201
    for client in held:
        client.wait_for(lambda c: c.events() == 1, "the live event")
    by_worker: dict[str, list[Client]] = {}
    for client in held:
        by_worker.setdefault(client.pid, []).append(client)
    for clients in by_worker.values():
        ledger.stream("news", clients[0], "lifetime")
        for client in clients[1:]:
            ledger.stream("news", client, "client_gone")
            client.leave()
    for clients in by_worker.values():
        clients[0].wait_until_ended()
        assert clients[0].body.endswith(b"\n\n")

    # A client that reads nothing, on a busy topic.
    busy = stack.topic()
    silent = Client(port, f"/news?topic={busy}", silent=True)
    ledger.started["news"] += 1
    ledger.ended["news", "send_timeout"] += 1
    for _ in range(60):
        assert stack.publish_route(busy, "x" * 60_000) == 201
    stack.app.wait_for_log(r"stream ended: endpoint=news reason=send_timeout")
    silent.sock.close()

    # A subscriber whose worker stops while more than QUEUE_SIZE events are published: the
    # reader hands them over at once when it goes on, and the stream falls behind.
    slow_topic = stack.topic()
    slow = ledger.stream("news", Client(port, f"/news?topic={slow_topic}"), "fell_behind")
    assert stack.publish_route(slow_topic, "before") == 201
    slow.wait_for(lambda c: c.events() == 1, "the first event")
    os.kill(int(slow.pid), signal.SIGSTOP)
    try:
        stack.publish_job(slow_topic, [f"burst {n}" for n in range(2 * QUEUE_SIZE)])
    finally:
        os.kill(int(slow.pid), signal.SIGCONT)
    slow.wait_until_ended()
    assert b": closed: fell too far behind" in slow.body

    # Resumes on the NDJSON endpoint: one replays two events, one has an id from a lost log.
    # From their start to the end Redis gives them, they must stay within LIFETIME: what
    # takes a process start (the job, `flask publish`) is done before they open.
    log_topic = stack.topic()
    first, _ = stack.publish_job(log_topic, ["one", "two"])
    stack.publish_cli(log_topic, "three")
    assert_ready(stack, ready=True)
    resumed = ledger.stream(
        "feed", Client(port, f"/feed?topic={log_topic}&last_event_id={first}"), "broker_lost"
    )
    lost = ledger.stream(
        "feed",
        Client(port, f"/feed?topic={log_topic}&last_event_id={log_topic}:0badcafe:0-1"),
        "broker_lost",
    )
    resumed.wait_for(lambda c: c.events() == 2, "the replay")
    lost.wait_for(lambda c: c.resets() == 1, "the reset")
    assert stack.publish_route(log_topic, "live") == 201
    resumed.wait_for(lambda c: c.events() == 3, "the live event")
    lost.wait_for(lambda c: c.events() == 1, "the live event")

    # Redis stops: the streams end, readiness fails, publishing and subscribing are refused.
    stack.redis.stop()
    try:
        resumed.wait_until_ended()
        lost.wait_until_ended()
        assert_ready(stack, ready=False)
        assert stack.publish_route(log_topic, "lost") == 503
        away = Client(port, f"/news?topic={log_topic}")
        away.wait_until_ended()
        assert away.refused, away.body
        ledger.refused["news", "broker_unavailable"] += 1
    finally:
        stack.redis.start()
    assert_ready(stack, ready=True)

    # A restart: the old workers end their streams, and leave the metrics with them.
    restart_topic = stack.topic()
    stopping = [
        ledger.stream("news", Client(port, f"/news?topic={restart_topic}"), "shutdown")
        for _ in range(2)
    ]
    for client in stopping:
        client.wait_for(lambda c: b": connected" in c.body, "the stream's start")
    restart_gracefully(stack.app, timeout=WAIT)
    for client in stopping:
        client.wait_until_ended()
        assert b": server restarting: reconnect" in client.body
    wait_until_answers(stack.app.port, path="/healthz")

    # Everything is logged: the send-timeout stream's line says what it was sent.
    deadline = time.monotonic() + WAIT
    while len(stack.ended_lines()) < sum(ledger.ended.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    [line] = [r for r in stack.ended_lines() if r["reason"] == "send_timeout"]
    ledger.unread["news"] += line["events"]


def assert_ready(stack: MetricsStack, *, ready: bool) -> None:
    """Wait until /readyz answers as *ready* on both workers (each answer names its worker)."""
    seen: set[str] = set()
    deadline = time.monotonic() + WAIT
    while len(seen) < 2:
        assert time.monotonic() < deadline, f"/readyz never {'ready' if ready else 'unready'}"
        conn = http.client.HTTPConnection(HOST, stack.app.port, timeout=WAIT)
        try:
            conn.request("GET", "/readyz")
            answer = conn.getresponse()
            body = json.loads(answer.read())
        finally:
            conn.close()
        if (answer.status == 200) == ready:
            seen.add(answer.headers["X-Worker-Pid"])
            if not ready:
                assert body == {"error": "not ready: the event broker is unavailable"}
        time.sleep(0.02)


# -------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("server", SERVERS)
def test_every_number_adds_up_across_workers_and_processes(
    servers: Servers,
    channel_projects: dict[str, Project],
    metrics_redis: RedisServer,
    server: str,
    record_property: pytest.RecordProperty,
) -> None:
    # gevent's app writes JSON log lines, gthread's text: the checker reads both.
    extra_env = {"LOG_FORMAT": "json"} if server == "gevent" else {}
    stack = start(
        servers, channel_projects[server], metrics_redis, f"metrics-{server}", extra_env=extra_env
    )
    started = time.monotonic()
    scenario(stack)
    record_property("scenario_seconds", round(time.monotonic() - started, 1))
    assert discrepancies(stack) == []

    scraped = stack.scrape()
    names = {name for name, _ in scraped}
    # The replay histogram: two resumes (2 and 0 events replayed), one reset.
    assert scraped["channel_replayed_events_count", frozenset({("endpoint", "feed")})] == 2
    assert scraped["channel_replayed_events_sum", frozenset({("endpoint", "feed")})] == 2
    assert scraped["channel_resets_total", frozenset({("endpoint", "feed")})] == 1
    reconnects = scraped["channel_reader_reconnects_total", frozenset()]
    assert reconnects >= 2  # each worker's reader lost Redis
    # Every metric the dashboard queries is in a real scrape.
    dashboard = json.loads((stack.project.root / "deploy" / "grafana-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queried = set(re.findall(r"\b(?:streams?|channel)_[a-z_]+\b", target["expr"]))
            assert queried and queried <= names, target["expr"]
    # Health probes are answered, not logged (a text or a JSON access line).
    assert "GET /readyz" not in stack.app.log()
    assert "GET /publish/" not in stack.app.log()
    assert "POST /publish/" in stack.app.log()
    if server == "gevent":
        assert all(
            line.startswith("{") for line in stack.app.log().splitlines() if "stream ended" in line
        )


NOT_SHARED = """

def post_fork(server, worker):
    # The negative control: each worker keeps its metrics in a directory of its own.
    import tempfile
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="not-shared-")
"""


def test_the_checker_fails_when_the_metrics_directory_is_not_shared(
    servers: Servers,
    channel_projects: dict[str, Project],
    metrics_redis: RedisServer,
) -> None:
    project = channel_projects["gthread"]
    conf = project.gunicorn_conf.with_name("gunicorn-not-shared.conf.py")
    conf.write_text(project.gunicorn_conf.read_text() + NOT_SHARED)
    stack = start(
        servers, project, metrics_redis, "metrics-not-shared", extra_args=("--config", str(conf))
    )
    ledger = stack.ledger
    for _ in range(4):
        ticks = ledger.stream(
            "events", Client(stack.app.port, "/events?count=3&interval=0"), "complete"
        )
        ticks.wait_until_ended()
    stack.publish_route(stack.topic(), "counted by a worker nobody scrapes")
    problems = discrepancies(stack)
    assert "streams_started_total{'endpoint': 'events'}: expected 4, scraped 0" in problems
    assert any(
        p.startswith("channel_publish_duration_seconds_count{'door': 'route'}") for p in problems
    )


# Each proxy's block that keeps /metrics from the public, as the generated config has it.
METRICS_BLOCKS = {
    "nginx": r"\n\s*location = /metrics \{[^}]*\}",
    "caddy": r"\n\s*respond /metrics 404",
    "apache": r'\n<Location "/metrics">[^<]*</Location>',
}


def without_the_metrics_block(kind: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        text, n = re.subn(METRICS_BLOCKS[kind], "", text)
        assert n, f"the generated {kind} config keeps no /metrics out"
        return text

    return edit


@pytest.mark.parametrize("kind", PROXIES)
def test_no_proxy_serves_the_metrics(servers: Servers, kind: str) -> None:
    """The app serves /metrics in debug mode only; even then, no generated proxy passes it on.

    The negative control: the same config without its /metrics block serves them.
    """
    require_proxy(kind)
    env = {"FLASK_DEBUG": "1"}
    app = servers.gunicorn("gthread", f"gunicorn-debug-metrics-{kind}", env=env)
    proxy = servers.proxy(kind, f"{kind}-debug-metrics", app)
    control = servers.proxy(
        kind, f"{kind}-debug-metrics-open", app, without_the_metrics_block(kind)
    )
    status, body = http_get(proxy.port, "/metrics")
    assert status in (403, 404)
    assert b"streams_started_total" not in body
    # Everything else still goes through.
    assert http_get(proxy.port, "/healthz")[0] == 200
    status, body = http_get(control.port, "/metrics")
    assert status == 200
    assert b"streams_started_total" in body


def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=WAIT)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()
