"""Fault injection for channels: a seeded run on the real stack, and the checker of its promise.

`run` renders a project with one SSE channel endpoint and serves it with gunicorn under
gthread and under gevent (two workers each), on a Redis primary that has a replica. For the
configured time it mixes:

* publishers at full speed on several topics with a small history, so that every log is
  trimmed all the time. Each publisher is a process of its own, calling the project's
  ``publish()``; it reports every publish Redis acknowledged, with its id: the ground truth;
* subscribers on 1 to 3 topics that drop at random moments and resume by ``Last-Event-ID``
  as EventSource does (some resume exactly at a topic's trim edge instead, and some read
  slowly, so that the server ends their streams for falling behind);
* faults: Redis restarted from a snapshot (the writes since lost), ``FLUSHALL`` (every log
  lost), a failover to a replica that missed the last writes, a gunicorn worker killed
  (SIGKILL), a graceful restart of gunicorn (HUP).

The Redis behind it is a primary and its replica (``topology="pair"``), or a Sentinel group
whose primary is killed, after its replica was held back for a moment or not (``"sentinel"``:
the Sentinels promote the replica, and the app must follow), or a three-shard Redis Cluster
whose shards are restarted empty (``"cluster"``).

`check` then verifies, for every subscriber and topic: events in publish order, none twice,
and every discontinuity preceded by a reset. Everything random comes from the seed; the
timing does not, so a seed gives the same schedule of faults and behaviours, not the same
interleaving. ``python -m bench.chaos`` runs it for minutes; the deploy tests run it briefly,
and against the deliberately non-atomic resume of ``chaos_app``, which the checker must catch.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import http.client
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import redis

from .client import run_async
from .redis_stack import ClusterGroup, RedisPair, SentinelGroup
from .stack import (
    HOST,
    REPO_ROOT,
    Process,
    Project,
    StackError,
    render_project,
    start_gunicorn,
    stop,
)

PATH = "/live"
ENDPOINT = {
    "name": "live",
    "path": PATH,
    "style": "decorator",
    "format": "sse",
    "session": False,
    "source": "channel",
}
SERVERS = ("gthread", "gevent")
FAULTS = ("snapshot restart", "flushall", "failover", "worker kill", "hup")
# The faults of each kind of Redis (FAULTS: a primary and its replica).
TOPOLOGY_FAULTS = {
    "pair": FAULTS,
    "sentinel": ("sentinel failover", "sentinel switchover", "worker kill", "hup"),
    "cluster": ("shard restart", "worker kill", "hup"),
}

# What a subscriber records, per topic: (kind, epoch, entry, token, milliseconds since start).
# An entry id "<ms>-<seq>" is kept as one number, ms << 20 | seq, which orders as ids do.
START, EVENT, RESET, MOVE = range(4)
FIELDS = 5
SEQ_BITS = 20


RedisStack = RedisPair | SentinelGroup | ClusterGroup


def redis_stack(config: ChaosConfig, workdir: Path) -> RedisStack:
    """The Redis of a run, by ``config.topology``."""
    if config.topology == "sentinel":
        return SentinelGroup(workdir)
    if config.topology == "cluster":
        return ClusterGroup(workdir)
    return RedisPair(workdir)


def entry_key(entry_id: str) -> int:
    ms, _, seq = entry_id.partition("-")
    return int(ms) << SEQ_BITS | int(seq)


def entry_id(key: int) -> str:
    return f"{key >> SEQ_BITS}-{key & ((1 << SEQ_BITS) - 1)}"


def token_key(token: str) -> int:
    """A publisher's token ``<publisher>.<n>`` as one number."""
    publisher, _, n = token.partition(".")
    return int(publisher) * 10**9 + int(n)


@dataclass(frozen=True)
class ChaosConfig:
    """What a run mixes; every default is what ``python -m bench.chaos`` uses."""

    seconds: float
    seed: int = 1
    topics: int = 6
    publishers: int = 2
    subscribers: int = 30
    # Events kept per topic: small, so that the logs are trimmed all the time.
    history: int = 40
    # Live events a stream may fall behind: below the history, so that a stream ended for
    # falling behind resumes near the trim edge.
    queue_size: int = 30
    # Replays of several topics pass it now and then.
    replay_max: int = 100
    # Seconds between two faults, on average.
    fault_every: float = 5.0
    faults: tuple[str, ...] = FAULTS
    # The negative control: each page of history checked and read in two steps.
    two_step_read: bool = False
    # Streams resuming from the same place share reads, and recent events are served from
    # the workers' memory (FLASK_STREAM_MERGE_READS). Off, every resume reads the log.
    merge_reads: bool = True
    # The template to render (a checkout or an exported git ref).
    template: Path = REPO_ROOT
    # "pair", "sentinel" or "cluster" (see the module docstring).
    topology: str = "pair"
    # Durable publishing: replicas that must have an event before publish() returns.
    publish_replicas: int = 0
    # How long a "sentinel failover" holds the replica back before the primary dies, at
    # most (seconds, drawn from 0.1 on): the writes of that moment are lost without WAIT.
    replica_lag: float = 1.0
    # Faults stop after ``seconds``; the run goes on until this long after the last one was
    # dealt with (a failover completed, a replica rejoined), so that every run ends with a
    # steady stretch of the last epoch to check, however slow the machine made the faults.
    settle_seconds: float = 4.0


class Epochs:
    """Numbers for epoch strings, so that records are plain integers."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}
        self.names: list[str] = []

    def number(self, epoch: str) -> int:
        if (found := self.numbers.get(epoch)) is not None:
            return found
        self.numbers[epoch] = len(self.names)
        self.names.append(epoch)
        return self.numbers[epoch]


class Truth:
    """Every publish Redis acknowledged, with its id, per topic and epoch: what happened."""

    def __init__(self, epochs: Epochs) -> None:
        self.epochs = epochs
        self.lock = threading.Lock()
        # (topic, epoch number) -> entry keys, in the order they were reported
        self.entries: dict[tuple[str, int], list[int]] = defaultdict(list)
        # (topic, epoch number, entry key) -> token
        self.tokens: dict[tuple[str, int, int], int] = {}
        self.unacknowledged: set[int] = set()
        self.acknowledged = 0
        # Epoch number -> when a publisher was first told of an event in it (monotonic).
        self.first_acknowledged: dict[int, float] = {}

    def record(self, line: str) -> None:
        """A publisher's report: ``<topic> <token> <epoch> <entry id> <monotonic time>``, or
        ``... -`` when the publish failed (it may have been written all the same)."""
        parts = line.split()
        if len(parts) == 3:
            with self.lock:
                self.unacknowledged.add(token_key(parts[1]))
            return
        topic, token, epoch, entry, when = parts
        key = entry_key(entry)
        with self.lock:
            number = self.epochs.number(epoch)
            self.entries[topic, number].append(key)
            self.tokens[topic, number, key] = token_key(token)
            self.acknowledged += 1
            self.first_acknowledged.setdefault(number, float(when))

    def edge(self, topic: str, first: int, epoch: str, offset: int) -> int | None:
        """The entry *offset* entries after the one just before *first* in *topic*'s log of
        *epoch*: 0 is the exact trim edge (0-0 when *first* is the first entry of all)."""
        with self.lock:
            keys = [0, *sorted(self.entries.get((topic, self.epochs.number(epoch)), ()))]
        at = bisect.bisect_left(keys, first)
        if at == len(keys) or keys[at] != first:
            return None
        return keys[min(at - 1 + offset, len(keys) - 1)]

    def latest_epoch(self, topic: str) -> str | None:
        with self.lock:
            numbers = [number for t, number in self.entries if t == topic]
        return self.epochs.names[max(numbers)] if numbers else None


# ------------------------------------------------------------------------ publishers


def publisher_main(argv: Sequence[str]) -> None:
    """A publisher process: ``<package> <number> <seed> <topic>...``.

    It publishes through the project's own ``publish()`` as fast as it can, until its stdin
    closes, and writes one line per publish to stdout (see `Truth.record`).
    """
    package, number, seed, *topics = argv
    app = __import__(package).create_app()
    channels = __import__(f"{package}.channels", fromlist=["publish"])
    brokers = __import__(f"{package}.brokers", fromlist=["BrokerUnavailable"])
    done = threading.Event()

    def wait_for_the_end() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_for_the_end, daemon=True).start()
    rng = random.Random(int(seed))
    out = sys.stdout
    n = 0
    with app.app_context():
        while not done.is_set():
            n += 1
            topic, token = rng.choice(topics), f"{number}.{n}"
            try:
                stream_id = channels.publish(topic, f"{topic} {token}")
            except brokers.BrokerUnavailable:
                out.write(f"{topic} {token} -\n")
                time.sleep(0.05)  # Redis is down: no need to spin
                continue
            _, epoch, entry = stream_id.split(":")
            # CLOCK_MONOTONIC is one clock for every process of the machine.
            out.write(f"{topic} {token} {epoch} {entry} {time.monotonic()}\n")
    out.flush()


@dataclass
class Publisher:
    popen: subprocess.Popen[str]
    reader: threading.Thread

    def stop(self) -> None:
        """Close its stdin (it stops after the publish under way) and take what it reported."""
        assert self.popen.stdin is not None
        with contextlib.suppress(OSError):
            self.popen.stdin.close()
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self.reader.join(timeout=30)


def start_publisher(
    project: Project,
    env: Mapping[str, str],
    topics: Sequence[str],
    truth: Truth,
    *,
    number: int,
    seed: int,
) -> Publisher:
    """Publisher *number* of the run, on *topics*; its reports go into *truth*."""
    code = "import sys; from harness.chaos import publisher_main; publisher_main(sys.argv[1:])"
    popen = subprocess.Popen(
        [sys.executable, "-c", code, project.package, str(number), str(seed), *topics],
        cwd=REPO_ROOT,
        env={**env, "PYTHONPATH": os.pathsep.join([str(project.root / "src"), str(REPO_ROOT)])},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def read() -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            if line.endswith("\n"):
                truth.record(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return Publisher(popen, reader)


# ----------------------------------------------------------------------- subscribers


@dataclass
class Subscriber:
    """An EventSource-like client of some topics; what it received is in ``records``."""

    name: str
    topics: list[str]
    kind: str  # "steady", "edge" (resumes at a trim edge now and then) or "slow"
    epochs: Epochs
    started: float
    records: dict[str, array[int]] = field(default_factory=dict)
    last_id: str = ""  # what EventSource would send as Last-Event-ID
    connections: int = 0
    refused: Counter[int] = field(default_factory=Counter)
    edge_resumes: int = 0
    _positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.records = {topic: array("q") for topic in self.topics}

    def add(self, kind: int, topic: str, position: tuple[int, int], token: int = -1) -> None:
        elapsed = int((time.monotonic() - self.started) * 1000)
        self.records[topic].extend((kind, position[0], position[1], token, elapsed))
        self._positions[topic] = position

    def parse_id(self, stream_id: str) -> dict[str, tuple[int, int]]:
        found = {}
        for part in stream_id.split(","):
            topic, epoch, entry = part.split(":")
            found[topic] = (self.epochs.number(epoch), entry_key(entry))
        return found

    def start(self, sent: str) -> None:
        """A new connection, resuming from *sent* (or from where its first id says)."""
        self.connections += 1
        self._positions = {}
        if sent:
            for topic, position in self.parse_id(sent).items():
                self.add(START, topic, position)

    def dispatch(self, event_type: str, data: str, stream_id: str) -> None:
        """A complete block: record what it changes of each topic's position."""
        self.last_id = stream_id
        if not stream_id:
            return
        reset_topics: list[str] = json.loads(data)["topics"] if event_type == "reset" else []
        event_topic, _, token = data.partition(" ") if event_type == "message" else ("", "", "")
        for topic, position in self.parse_id(stream_id).items():
            if topic not in self._positions:
                self.add(START, topic, position)  # the first id of a fresh connection
            elif topic == event_topic:
                self.add(EVENT, topic, position, token_key(token))
            elif topic in reset_topics:
                self.add(RESET, topic, position)
            elif position != self._positions[topic]:
                self.add(MOVE, topic, position)


class Clients:
    """Runs the subscribers on one asyncio loop until told to stop."""

    def __init__(
        self,
        config: ChaosConfig,
        ports: Sequence[int],
        truth: Truth,
        stack: RedisStack,
        started: float,
    ) -> None:
        self.config = config
        self.ports = list(ports)
        self.truth = truth
        self.stack = stack
        self.rng = random.Random(config.seed)
        self.started = started
        kinds = ["steady", "edge", "steady", "slow"]
        topics = [f"chaos-{n}" for n in range(config.topics)]
        self.subscribers = [
            Subscriber(
                f"s{n}",
                self.rng.sample(topics, self.rng.randint(1, min(3, len(topics)))),
                kinds[n % len(kinds)],
                truth.epochs,
                self.started,
            )
            for n in range(config.subscribers)
        ]
        self.stopping: asyncio.Event | None = None

    async def run(self, until: threading.Event) -> None:
        self.stopping = asyncio.Event()
        tasks = [
            asyncio.create_task(self._follow(s, random.Random(self.rng.random())))
            for s in self.subscribers
        ]
        while not until.is_set():
            await asyncio.sleep(0.1)
        self.stopping.set()
        for task in tasks:
            task.cancel()  # a slow reader's connection would otherwise run on for a minute
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self, subscriber: Subscriber, rng: random.Random) -> None:
        assert self.stopping is not None
        while not self.stopping.is_set():
            sent = subscriber.last_id
            if subscriber.kind == "edge" and rng.random() < 0.5:
                # Exactly at the edge, or a few entries after it: the trimming may pass it
                # while the stream starts.
                offset = rng.choice([0, 0, 1, 2, 4, 8])
                edge = await asyncio.to_thread(self._edge_id, subscriber.topics, offset)
                sent = edge or sent
            # A steady client drops after 4 s on average; a slow one is ended by the server.
            drop = rng.expovariate(1 / 4) if subscriber.kind != "slow" else 60.0
            retry = 0.1
            # A drop (the timeout), a refused or cut connection, a body cut in a chunk.
            with contextlib.suppress(
                TimeoutError, OSError, asyncio.IncompleteReadError, ValueError
            ):
                retry = await asyncio.wait_for(
                    self._connect(subscriber, rng.choice(self.ports), sent, rng), timeout=drop
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=retry)

    def _edge_id(self, topics: Sequence[str], offset: int) -> str | None:
        """An id at each topic's trim edge (the entry just before the oldest kept one), or
        *offset* entries after it."""
        parts = []
        try:
            client = self.stack.client()
        except (OSError, redis.RedisError, StackError):
            return None
        with contextlib.closing(client):
            for topic in topics:
                try:
                    first = cast(
                        "list[tuple[str, dict[str, str]]]",
                        client.xrange(self.stack.stream_key(topic), count=1),
                    )
                except (OSError, redis.RedisError):
                    return None
                epoch = self.truth.latest_epoch(topic)
                if not first or epoch is None or first[0][1].get("epoch") != epoch:
                    return None  # no log, or one whose oldest entries are of an older epoch
                edge = self.truth.edge(topic, entry_key(first[0][0]), epoch, offset)
                if edge is None:
                    return None
                parts.append(f"{topic}:{epoch}:{entry_id(edge)}")
        return ",".join(parts)

    async def _connect(
        self, subscriber: Subscriber, port: int, sent: str, rng: random.Random
    ) -> float:
        """One connection; returns how long to wait before the next (the retry hint)."""
        if sent != subscriber.last_id:
            subscriber.edge_resumes += 1
        limit = 4096 if subscriber.kind == "slow" else 2**16
        reader, writer = await asyncio.open_connection(HOST, port, limit=limit)
        try:
            query = "&".join(f"topic={t}" for t in subscriber.topics)
            header = f"Last-Event-ID: {sent}\r\n" if sent else ""
            writer.write(f"GET {PATH}?{query} HTTP/1.1\r\nHost: chaos\r\n{header}\r\n".encode())
            status = int((await reader.readline()).split()[1])
            while (await reader.readline()).strip():
                pass  # headers: gunicorn sends the body chunked
            if status != 200:
                subscriber.refused[status] += 1
                subscriber.last_id = ""  # EventSource would give up; this client starts over
                return 0.5
            subscriber.start(sent)
            return await self._read(subscriber, reader, rng)
        finally:
            writer.close()

    async def _read(
        self, subscriber: Subscriber, reader: asyncio.StreamReader, rng: random.Random
    ) -> float:
        retry, pending = 0.1, ""
        event_type, last_id = "", subscriber.last_id
        data: list[str] = []
        while True:
            size = int(await reader.readline(), 16)
            if size == 0:
                return retry
            pending += (await reader.readexactly(size + 2))[:-2].decode()
            *lines, pending = pending.split("\n")
            for line in lines:
                if not line:
                    if data or last_id != subscriber.last_id:
                        subscriber.dispatch(event_type or "message", "\n".join(data), last_id)
                    event_type, data = "", []
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "id":
                    last_id = value
                elif name == "event":
                    event_type = value
                elif name == "data":
                    data.append(value)
                elif name == "retry" and value.isdigit():
                    retry = int(value) / 1000
            if subscriber.kind == "slow":
                await asyncio.sleep(rng.uniform(0.005, 0.05))


# ---------------------------------------------------------------------------- faults


class Faults:
    """Injects a fault every few seconds (exponentially spaced), chosen by the seed."""

    def __init__(
        self, config: ChaosConfig, stack: RedisStack, hosts: Sequence[Process], started: float
    ) -> None:
        self.config = config
        self.stack = stack
        self.hosts = list(hosts)
        # One generator for the schedule, one for each fault's details: the schedule of a
        # seed stays the same whatever the faults draw.
        self.rng = random.Random(config.seed + 1)
        self.details = random.Random(config.seed + 2)
        self.done: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self.started = started
        # When each failover killed a primary, or each switch-over began (monotonic).
        self.kills: list[float] = []
        # When the last fault was dealt with (monotonic): the start, until one is.
        self.quiet_since = started

    def run(self, stop: threading.Event) -> None:
        """Inject faults on schedule until *stop* is set; a fault under way is completed."""
        if not self.config.faults:
            return
        due = 0.0  # seconds after the start: the schedule does not drift with the faults
        while True:
            due += self.rng.expovariate(1 / self.config.fault_every)
            if stop.wait(max(0.0, due - (time.monotonic() - self.started))):
                return
            fault = self.rng.choice(self.config.faults)
            self.done.append((time.monotonic() - self.started, fault))
            try:
                self.inject(fault)
            except Exception as error:  # reported, and the run goes on
                self.errors.append(f"{fault} failed: {error!r}")
            self.quiet_since = time.monotonic()

    def inject(self, fault: str) -> None:
        stack = self.stack
        if isinstance(stack, SentinelGroup):
            if fault == "sentinel failover":
                lag = self.details.uniform(0.1, self.config.replica_lag)
                self.kills.append(stack.fail_over(lag=lag))
                stack.rejoin()
            elif fault == "sentinel switchover":
                self.kills.append(stack.switch_over())
        elif isinstance(stack, ClusterGroup):
            if fault == "shard restart":
                stack.restart_shard(self.details.randrange(stack.shards))
        elif fault == "snapshot restart":
            stack.primary.save()
            time.sleep(self.details.uniform(0.1, 1.0))  # what is written now is lost
            stack.restart_primary()
        elif fault == "flushall":
            with contextlib.closing(stack.primary.client()) as client:
                client.flushall()
        elif fault == "failover":
            stack.detach_replica()
            time.sleep(self.details.uniform(0.1, 1.0))  # what is written now is lost
            stack.fail_over()
        if fault == "worker kill":
            workers = [pid for host in self.hosts for pid in host.children()]
            if workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.details.choice(workers), signal.SIGKILL)
        elif fault == "hup":
            os.kill(self.details.choice(self.hosts).pid, signal.SIGHUP)


# --------------------------------------------------------------------------- checker


@dataclass
class Violation:
    subscriber: str
    topic: str
    what: str  # "gap", "duplicate" or "phantom"
    index: int  # of the offending record


@dataclass
class Report:
    """What a run did and what the checker found."""

    seed: int
    seconds: float
    deliveries: int = 0
    resets: int = 0
    gaps: int = 0
    duplicates: int = 0
    phantoms: int = 0
    refused: int = 0
    connections: int = 0
    edge_resumes: int = 0
    published: int = 0
    # Acknowledged events missing from the logs at the end, within what each log retains.
    lost_acknowledged: int = 0
    # Seconds from each failover (the kill, or the switch-over) to the first publish acknowledged
    # in a new epoch.
    failovers: list[float] = field(default_factory=list)
    # Deliveries of events of the last epoch: the readers followed the Redis of the end.
    last_epoch_deliveries: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.gaps or self.duplicates or self.phantoms or self.refused or self.failures)

    def summary(self) -> str:
        faults = ", ".join(f"{name} {count}" for name, count in sorted(self.faults.items()))
        lines = [
            f"seed {self.seed}, {self.seconds:.0f} s: {self.published:,} publishes acknowledged, "
            f"{self.connections:,} connections ({self.edge_resumes:,} resumed at a trim edge)",
            f"faults: {faults or 'none'}",
            f"deliveries checked: {self.deliveries:,}",
            f"resets: {self.resets:,}",
            f"gaps: {self.gaps}",
            f"duplicates: {self.duplicates}",
            f"events nobody published: {self.phantoms}",
            f"error answers to a resume: {self.refused}",
            f"acknowledged events lost: {self.lost_acknowledged}",
            f"deliveries of the last epoch: {self.last_epoch_deliveries:,}",
        ]
        if self.failovers:
            times = ", ".join(f"{seconds:.2f} s" for seconds in self.failovers)
            lines.append(f"publishing resumed after each failover in: {times}")
        return "\n".join(lines + self.failures)


def check(subscribers: Sequence[Subscriber], truth: Truth) -> tuple[Report, list[Violation]]:
    """Check every subscriber's every topic against what was published.

    Each event must come after the one before it (none twice, none out of order) and be the
    very next one published on its topic in that epoch, unless a reset came in between. A
    move of a topic's id without an event (a frame whose id skips ahead) counts as a gap
    unless nothing was published in between. An event whose token was never published is a
    phantom; one that was published but never acknowledged (Redis went away) is taken into
    the truth as written.
    """
    report = Report(seed=0, seconds=0)
    tokens = truth.unacknowledged | set(truth.tokens.values())
    for subscriber in subscribers:
        _admit_unacknowledged(subscriber, truth, tokens)
    ordered = {key: sorted(set(keys)) for key, keys in truth.entries.items()}
    violations = []
    for subscriber in subscribers:
        report.connections += subscriber.connections
        report.edge_resumes += subscriber.edge_resumes
        report.refused += sum(subscriber.refused.values())
        for topic, records in subscriber.records.items():
            for index, what in _check_topic(topic, records, ordered, truth, report):
                violations.append(Violation(subscriber.name, topic, what, index))
    report.gaps = sum(v.what == "gap" for v in violations)
    report.duplicates = sum(v.what == "duplicate" for v in violations)
    report.phantoms = sum(v.what == "phantom" for v in violations)
    return report, violations


def _admit_unacknowledged(subscriber: Subscriber, truth: Truth, tokens: set[int]) -> None:
    """Events a subscriber got that no publisher saw acknowledged were written all the same:
    a publish that failed (Redis went away before answering), or the second write of one
    the Redis client sent again after a dropped connection. They are part of the truth."""
    for topic, records in subscriber.records.items():
        for index in range(0, len(records), FIELDS):
            kind, epoch, key, token = records[index : index + 4]
            if kind == EVENT and (topic, epoch, key) not in truth.tokens and token in tokens:
                truth.entries[topic, epoch].append(key)
                truth.tokens[topic, epoch, key] = token


def _check_topic(
    topic: str,
    records: array[int],
    ordered: Mapping[tuple[str, int], list[int]],
    truth: Truth,
    report: Report,
) -> Iterator[tuple[int, str]]:
    """The violations in one topic's records, as (record index, what)."""
    epoch = key = -1  # the position: none yet
    free = True  # the next move needs no predecessor (after a start-less connect, a reset)
    for index in range(0, len(records), FIELDS):
        kind, new_epoch, new_key, token = records[index : index + 4]
        if kind == START:
            epoch, key, free = new_epoch, new_key, False
            continue
        if kind == RESET:
            report.resets += 1
            # A reset that moves the position continues from there; one that does not is
            # followed by the first event of a new epoch.
            free = (new_epoch, new_key) == (epoch, key)
            epoch, key = new_epoch, new_key
            continue
        if kind == EVENT:
            report.deliveries += 1
            if truth.tokens.get((topic, new_epoch, new_key)) != token:
                yield index, "phantom"
        if key >= 0 and new_key <= key and (kind == EVENT or new_key < key):
            yield index, "duplicate"
        elif not free and _skipped(ordered, topic, (epoch, key), (new_epoch, new_key), kind):
            yield index, "gap"
        epoch, key, free = new_epoch, new_key, False


def _skipped(
    ordered: Mapping[tuple[str, int], list[int]],
    topic: str,
    before: tuple[int, int],
    after: tuple[int, int],
    kind: int,
) -> bool:
    """Whether going from *before* to *after* skips something published in between."""
    if before[0] != after[0]:
        # Another epoch without a reset: only a position before everything ("0-0", the
        # form older versions gave every topic with no log yet) may start a new one.
        if before[1] != 0:
            return True
        keys = ordered.get((topic, after[0]), [])
        return bisect.bisect_left(keys, after[1]) > 0
    keys = ordered.get((topic, after[0]), [])
    low = bisect.bisect_right(keys, before[1])
    high = (
        bisect.bisect_left(keys, after[1]) if kind == EVENT else bisect.bisect_right(keys, after[1])
    )
    return high > low


def describe(
    violation: Violation, subscriber: Subscriber, truth: Truth, faults: Sequence[tuple[float, str]]
) -> str:
    """The smallest history that shows *violation*: the subscriber's records of the topic
    from the start of that connection to the offending one, what was published in between,
    and the faults around it."""
    records = subscriber.records[violation.topic]
    rows = [records[i : i + FIELDS] for i in range(0, len(records), FIELDS)]
    at = violation.index // FIELDS
    start = max((n for n in range(at + 1) if rows[n][0] == START), default=0)
    names = {START: "start", EVENT: "event", RESET: "reset", MOVE: "id moves to"}
    lines = [
        f"{violation.what} for subscriber {subscriber.name} ({subscriber.kind}, topics "
        f"{', '.join(subscriber.topics)}), topic {violation.topic}:"
    ]
    for row in rows[max(start, at - 5) : at + 1]:
        kind, epoch, key, token, elapsed = row
        lines.append(
            f"  {elapsed / 1000:8.3f} s  {names[kind]} {truth.epochs.names[epoch]}:{entry_id(key)}"
            + (f" (token {token})" if kind == EVENT else "")
        )
    previous, current = rows[at - 1] if at else rows[at], rows[at]
    keys = sorted(set(truth.entries.get((violation.topic, current[1]), [])))
    between = [k for k in keys if previous[2] < k < current[2]]
    published = ", ".join(entry_id(k) for k in between[:5]) + (" ..." if len(between) > 5 else "")
    lines.append(f"  published in between and not received: {published or 'none'}")
    when = current[4] / 1000
    near = [f"{t:.3f} s {name}" for t, name in faults if abs(t - when) < 3]
    lines.append(f"  faults within 3 s: {', '.join(near) or 'none'}")
    epochs = sorted(
        (truth.first_acknowledged.get(epoch, math.inf), epoch)
        for topic, epoch in truth.entries
        if topic == violation.topic
    )
    lines.append(
        "  the topic's epochs, first acknowledged at (monotonic): "
        + ", ".join(f"{truth.epochs.names[epoch]} {first:.3f}" for first, epoch in epochs)
    )
    return "\n".join(lines)


# ------------------------------------------------------------------------------- run


def render(config: ChaosConfig, workdir: Path) -> dict[str, Project]:
    """The project, rendered once per worker class."""
    return {
        server: render_project(
            workdir / f"project-{server}",
            server=server,
            endpoints=[ENDPOINT],
            project_name="chaos",
            template=config.template,
        )
        for server in SERVERS
    }


def app_env(config: ChaosConfig, project: Project, redis_url: str) -> dict[str, str]:
    return {
        "CHANNEL_APP_PACKAGE": project.package,
        "CHAOS_TWO_STEP_READ": "1" if config.two_step_read else "0",
        "FLASK_STREAM_MERGE_READS": "true" if config.merge_reads else "false",
        "FLASK_SECRET_KEY": "chaos-only-secret-key-" + "x" * 32,
        "FLASK_STREAM_BROKER_URL": redis_url,
        "FLASK_STREAM_HISTORY": str(config.history),
        "FLASK_STREAM_QUEUE_SIZE": str(config.queue_size),
        "FLASK_STREAM_REPLAY_MAX": str(config.replay_max),
        "FLASK_STREAM_HEARTBEAT_SECONDS": "1",
        "FLASK_STREAM_RETRY_MS": "100",
        "FLASK_STREAM_PUBLISH_REPLICAS": str(config.publish_replicas),
        "FLASK_STREAM_PUBLISH_WAIT_SECONDS": "0.25",
    }


def lost_acknowledged(stack: RedisStack, truth: Truth, topics: Sequence[str]) -> int:
    """Acknowledged events that the logs no longer hold, though they hold older ones: what
    the Redis of the end lost (a tail lost in a failover, a restart), not what was trimmed."""
    lost = 0
    with contextlib.closing(stack.client()) as client:
        for topic in topics:
            entries = cast(
                "list[tuple[str, dict[str, str]]]", client.xrange(stack.stream_key(topic))
            )
            if not entries:
                continue
            first = entry_key(entries[0][0])
            kept = {
                (truth.epochs.number(fields.get("epoch", "")), entry_key(entry))
                for entry, fields in entries
            }
            with truth.lock:
                lost += sum(
                    1
                    for (name, epoch), keys in truth.entries.items()
                    if name == topic
                    for key in keys
                    if key >= first and (epoch, key) not in kept
                )
    return lost


def last_epoch_deliveries(subscribers: Sequence[Subscriber], truth: Truth) -> int:
    """Deliveries of events of the last epoch of their topic (each topic has its own in a
    cluster): what the readers delivered from the Redis of the end."""
    epochs: dict[str, list[int]] = defaultdict(list)
    for topic, epoch in truth.entries:
        epochs[topic].append(epoch)
    last = {
        topic: max(numbers, key=lambda n: truth.first_acknowledged.get(n, -math.inf))
        for topic, numbers in epochs.items()
    }
    return sum(
        records[index] == EVENT and records[index + 1] == last.get(topic)
        for subscriber in subscribers
        for topic, records in subscriber.records.items()
        for index in range(0, len(records), FIELDS)
    )


def hung_hosts(hosts: Sequence[Process]) -> list[str]:
    """Hosts that do not start a new stream within 5 s (a few tries each, so that more than
    one worker of each is asked)."""
    hung = []
    for host in hosts:
        for _ in range(4):
            connection = http.client.HTTPConnection(HOST, host.port, timeout=5)
            try:
                connection.request("GET", f"{PATH}?topic=chaos-probe")
                status = connection.getresponse().status
            except (OSError, http.client.HTTPException) as error:
                hung.append(f"port {host.port}: {error!r}")
                break
            finally:
                connection.close()
            if status != 200:
                hung.append(f"port {host.port}: status {status}")
                break
    return hung


@contextlib.contextmanager
def injecting(config: ChaosConfig, faults: Faults, until: threading.Event) -> Iterator[None]:
    """Inject *faults* while the block runs, and set *until* when the run is over."""
    no_more_faults = threading.Event()
    injector = threading.Thread(target=faults.run, args=(no_more_faults,), daemon=True)
    ender = threading.Thread(
        target=end_when_settled,
        args=(config, faults, injector, no_more_faults, until),
        daemon=True,
    )
    injector.start()
    ender.start()
    try:
        yield
    finally:
        no_more_faults.set()
        until.set()
        injector.join(timeout=60)
        ender.join(timeout=60)


def end_when_settled(
    config: ChaosConfig,
    faults: Faults,
    injector: threading.Thread,
    no_more_faults: threading.Event,
    until: threading.Event,
) -> None:
    """Stop injecting after ``config.seconds``, and end the run ``config.settle_seconds``
    after the last fault was dealt with (or at once, when *until* is set early)."""
    if until.wait(config.seconds):
        return
    no_more_faults.set()
    injector.join()
    until.wait(max(0.0, faults.quiet_since + config.settle_seconds - time.monotonic()))
    until.set()


def run(
    config: ChaosConfig, workdir: Path, projects: Mapping[str, Project] | None = None
) -> Report:
    """Run the mix for ``config.seconds`` (and the settling after the last fault) and check
    it; every process is stopped at the end.

    *projects* are the rendered projects by worker class (`render`), when already at hand.
    """
    projects = projects or render(config, workdir)
    stack = redis_stack(config, workdir / "redis")
    truth = Truth(Epochs())
    hosts: list[Process] = []
    publishers: list[Publisher] = []
    until = threading.Event()
    try:
        stack.start()
        for server, project in projects.items():
            hosts.append(
                start_gunicorn(
                    project,
                    log_path=workdir / f"gunicorn-{server}.log",
                    app="harness.chaos_app:create_app()",
                    pythonpath=[REPO_ROOT],
                    env=app_env(config, project, stack.url),
                    extra_args=["--workers", "2"],
                )
            )
        project = projects["gthread"]
        env = {**os.environ, **app_env(config, project, stack.url)}
        topics = [f"chaos-{n}" for n in range(config.topics)]
        for number in range(config.publishers):
            mine = topics[number :: config.publishers] or topics
            publishers.append(
                start_publisher(project, env, mine, truth, number=number, seed=config.seed + number)
            )
        started = time.monotonic()
        clients = Clients(config, [host.port for host in hosts], truth, stack, started)
        faults = Faults(config, stack, hosts, started)
        with injecting(config, faults, until):
            # In a thread of its own: a browser test's Playwright may hold this thread's loop.
            run_async(clients.run(until), timeout=config.seconds + 300)
        ended = time.monotonic()
        for publisher in publishers:
            publisher.stop()  # every acknowledgement is in, before the logs are compared
        lost = lost_acknowledged(stack, truth, topics)
        hung = hung_hosts(hosts)
    finally:
        until.set()
        for publisher in publishers:
            publisher.stop()
        for host in hosts:
            stop(host)
        stack.stop()
    report, violations = check(clients.subscribers, truth)
    report.seed, report.seconds = config.seed, ended - started
    report.published = truth.acknowledged
    report.faults = Counter(name for _, name in faults.done)
    report.failures += faults.errors + [f"a host hung: {what}" for what in hung]
    report.lost_acknowledged = lost
    report.failovers = [
        min((t for t in truth.first_acknowledged.values() if t > kill), default=math.inf) - kill
        for kill in faults.kills
    ]
    report.last_epoch_deliveries = last_epoch_deliveries(clients.subscribers, truth)
    by_name = {s.name: s for s in clients.subscribers}
    for violation in violations[:3]:
        report.failures.append(
            describe(violation, by_name[violation.subscriber], truth, faults.done)
        )
    return report
