"""``python -m bench.fanout``: one publisher, many subscribers, two gunicorn gevent instances.

The generated project's channel endpoint (Redis Streams, one reader per worker) against
flask-sse 1.0 (Redis pub/sub), on the same gunicorn gevent settings and the same workload:
one publisher posting 10 events/s to instance A while the subscribers are split over
instance A and instance B (one gevent worker each, so two workers in all) and one Redis.

Reported per peer and subscriber count: events lost, the publish rate reached (below 10/s
when the server is saturated: each publish waits for the previous answer),
publish-to-delivery latency p50/p99 (the publisher stamps each event with its send time),
server CPU per delivered event (user + system time of the gunicorn workers while
publishing), memory per subscriber (worker RSS growth while the subscribers connect), and
Redis connections in use (``INFO clients``). ``--kill`` then kills instance A's worker
mid-stream and counts what each peer's clients, reconnecting as EventSource does (with
``Last-Event-ID`` when they have one), lose. Every run gets fresh servers; ``--repeat N``
runs each row N times and reports the median run.

``--cluster`` runs the generated project on a three-shard Redis Cluster against the same
project on one Redis (flask-sse cannot use a cluster), with the events spread over
``--topics`` topics (six by default) and the subscribers over the topics; it reports, per
shard, the deliveries of the topics it holds, its CPU time while publishing (``INFO cpu``)
and the script calls it served (``INFO commandstats``).

Not a test: numbers vary with the machine; compare the peers within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import http.client
import json
import multiprocessing as mp
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from harness import stack
from harness.redis_stack import ClusterGroup, RedisServer

from .common import REPO, number, raise_open_files

SECRET = "bench-only-secret-key-" + "x" * 32
TOKEN = "bench-publish-token"
RATE = 10.0


@dataclass
class Peer:
    name: str
    redis: RedisServer | ClusterGroup
    hosts: list[stack.Process]
    subscribe_path: str
    publish_headers: dict[str, str]
    # flask-sse subscribes inside its generator and sends no byte before the first event:
    # its subscriptions are counted in Redis (PUBSUB NUMSUB). The generated app subscribes
    # in the view and answers at once: a client counts once its first bytes arrived.
    pubsub: bool

    def workers(self) -> list[psutil.Process]:
        return [psutil.Process(pid) for host in self.hosts for pid in host.children()]


# A complete event block carries the publisher's stamp; ids and retry hints are read from
# their own lines.
_STAMP = re.compile(rb'"n":\s*(\d+),\s*"t":\s*([0-9.]+)')
_ID = re.compile(rb"^id: ?([^\r\n]*)", re.MULTILINE)
_RETRY = re.compile(rb"^retry: ?(\d+)\r?$", re.MULTILINE)
# The comment of the generated app's answer to a stream it has no room for (a 200, so that
# EventSource comes back).
_REFUSED = b"open streams, its limit: reconnect"


@dataclass
class Client:
    port: int
    path: str
    answer_first: bool
    # How long to wait before reconnecting (s), until the server sends its own hint.
    retry: float = 0.3
    last_id: bytes = b""
    # Event number -> (time it arrived, the publisher's stamp).
    seen: dict[int, tuple[float, float]] = field(default_factory=dict)
    duplicates: int = 0
    reconnects: int = 0
    refused: int = 0
    # Each connection that was answered: when it was opened, and when its first event came.
    connections: list[list[float]] = field(default_factory=list)


async def run_client(client: Client, stop: asyncio.Event, connected: asyncio.Event) -> None:
    """An SSE client that reconnects (with Last-Event-ID when it has one) until *stop*.

    As EventSource does, it waits the server's last ``retry:`` hint before reconnecting.
    It reads whatever has arrived in one go and scans complete event blocks with regular
    expressions: a client that woke up and parsed line by line for each event would need
    more CPU than the servers it measures.
    """
    while not stop.is_set():
        opened = time.time()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", client.port, limit=2**20)
        except OSError:
            await asyncio.sleep(0.3)
            continue
        extra = b"Last-Event-ID: " + client.last_id + b"\r\n" if client.last_id else b""
        writer.write(
            b"GET " + client.path.encode() + b" HTTP/1.1\r\nHost: bench\r\n" + extra + b"\r\n"
        )
        if not client.answer_first:
            connected.set()
        pending = b""
        answered = False
        connection = [opened, 0.0]
        try:
            while not stop.is_set():
                chunk = await reader.read(65536)
                if not chunk:
                    break
                if not answered:
                    answered = True
                    if not chunk.startswith(b"HTTP/1.1 200") or _REFUSED in chunk:
                        # A refusal (an error status, or the generated app's short answer at
                        # a worker's open-stream limit) counts, and the client tries again.
                        client.refused += 1
                        break
                    connected.set()
                    client.connections.append(connection)
                now = time.time()
                pending += chunk
                complete, sep, pending = pending.rpartition(b"\n\n")
                if not sep:
                    pending = complete
                    continue
                if ids := _ID.findall(complete):
                    client.last_id = ids[-1].strip()
                if hints := _RETRY.findall(complete):
                    client.retry = int(hints[-1]) / 1000
                for number, stamp in _STAMP.findall(complete):
                    n = int(number)
                    if not connection[1]:
                        connection[1] = now
                    if n in client.seen:
                        client.duplicates += 1
                    else:
                        client.seen[n] = (now, float(stamp))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
        if not stop.is_set():
            client.reconnects += 1
            await asyncio.sleep(client.retry)


def client_process(
    ports: list[int],
    paths: list[str],
    answer_first: bool,
    count: int,
    slot: int,
    connected: Any,
    stop: Any,
    delivered: Any,
    results: Any,
) -> None:
    """Run *count* clients in this process until *stop*; report through *results*.

    Client *i* follows ``paths[(slot + i) % len(paths)]`` (see `followers`)."""
    raise_open_files()

    async def main() -> None:
        clients = [
            Client(ports[i % len(ports)], paths[(slot + i) % len(paths)], answer_first)
            for i in range(count)
        ]
        halt = asyncio.Event()
        tasks = []
        for batch in range(0, count, 200):
            flags = [asyncio.Event() for _ in clients[batch : batch + 200]]
            tasks += [
                asyncio.ensure_future(run_client(c, halt, f))
                for c, f in zip(clients[batch : batch + 200], flags, strict=True)
            ]
            await asyncio.wait_for(asyncio.gather(*(f.wait() for f in flags)), timeout=120)
        connected.set()
        while not stop.is_set():
            delivered[slot] = sum(len(c.seen) for c in clients)
            await asyncio.sleep(0.2)
        halt.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        results.put(
            {
                "seen": [c.seen for c in clients],
                "connections": [c.connections for c in clients],
                "duplicates": sum(c.duplicates for c in clients),
                "reconnects": sum(c.reconnects for c in clients),
                "refused": sum(c.refused for c in clients),
            }
        )

    asyncio.run(main())


def publish_all(
    port: int,
    paths: list[str],
    headers: dict[str, str],
    count: int,
    midway: Callable[[], None] | None,
    at: int | None = None,
) -> int:
    """POST *count* stamped events at 10/s, event *n* to ``paths[n % len(paths)]``; call
    *midway* before event *at* (by default a third of the way through): kill a worker,
    restart the servers.

    The publisher keeps its connection open between events, as a job with an HTTP session
    would (a new connection per event costs the server more than 100 deliveries' worth of
    CPU on a small machine), and opens a new one when the server drops it.
    Returns how many POSTs got no answer within 30 s (an overloaded server, or the killed
    worker); the event may still have been published, so the run counts its deliveries as
    usual.
    """
    unanswered = 0
    conn: http.client.HTTPConnection | None = None
    start = time.monotonic()
    try:
        for n in range(count):
            time.sleep(max(0.0, start + n / RATE - time.monotonic()))
            if midway is not None and n == (count // 3 if at is None else at):
                midway()
            body = json.dumps({"n": n, "t": time.time()}).encode()
            # A kept connection the server has dropped (the killed worker's) fails at once:
            # the event is sent again on a new one.
            for attempt in (1, 2):
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                try:
                    conn.request("POST", paths[n % len(paths)], body=body, headers=headers)
                    conn.getresponse().read()
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = None
                    if attempt == 2:
                        unanswered += 1
    finally:
        if conn is not None:
            conn.close()
    return unanswered


def cpu(workers: Sequence[psutil.Process]) -> float:
    total = 0.0
    for worker in workers:
        try:
            times = worker.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def rss(workers: Sequence[psutil.Process]) -> int:
    total = 0
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += worker.memory_info().rss
    return total


def nodes(redis: RedisServer | ClusterGroup) -> list[RedisServer]:
    """The redis-server processes of a peer: one, or a cluster's shards."""
    return redis.servers if isinstance(redis, ClusterGroup) else [redis]


def redis_clients(redis: RedisServer | ClusterGroup) -> int:
    total = 0
    for node in nodes(redis):
        with contextlib.closing(node.client()) as client:
            # Minus this very connection.
            total += int(client.info("clients")["connected_clients"]) - 1
    return total


def shard_load(redis: RedisServer | ClusterGroup) -> list[dict[str, float]]:
    """Per redis-server: CPU seconds used so far and the script calls served so far."""
    load = []
    for node in nodes(redis):
        with contextlib.closing(node.client()) as client:
            cpu = client.info("cpu")
            stats = client.info("commandstats")
        load.append(
            {
                "cpu_s": float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
                "scripts": sum(
                    int(stats.get(name, {}).get("calls", 0))
                    for name in ("cmdstat_evalsha", "cmdstat_eval")
                ),
            }
        )
    return load


def shard_of(redis: RedisServer | ClusterGroup, topic: str) -> int:
    """The index of the shard that holds *topic* (0 on one server)."""
    if not isinstance(redis, ClusterGroup):
        return 0
    from redis.crc import key_slot

    slot = key_slot(redis.stream_key(topic).encode())
    return slot * redis.shards // 16384


def followers(share: list[int], topics: int) -> list[int]:
    """How many clients follow each topic, when process *p* runs ``share[p]`` clients and
    its client *i* follows topic ``(p + i) % topics``."""
    counts = [0] * topics
    for slot, count in enumerate(share):
        for i in range(count):
            counts[(slot + i) % topics] += 1
    return counts


def wait_for_pubsub(redis: RedisServer | ClusterGroup, channel: str, subscribers: int) -> None:
    """Wait until Redis counts *subscribers* pub/sub subscriptions on *channel*."""
    [server] = nodes(redis)
    with contextlib.closing(server.client()) as client:
        deadline = time.monotonic() + 180
        while int(client.pubsub_numsub(channel)[0][1]) < subscribers:
            if time.monotonic() > deadline:
                raise RuntimeError("the pub/sub subscriptions did not settle in time")
            time.sleep(0.2)


def measure(
    peer: Peer, subscribers: int, events: int, *, kill: bool, processes: int, topics: int = 1
) -> dict[str, Any]:
    base = f"bench{subscribers}{'k' if kill else ''}{int(time.time() * 1000) % 100000}"
    names = [base] if topics == 1 else [f"{base}-{n}" for n in range(topics)]
    workers = peer.workers()
    base_rss = rss(workers)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    delivered = ctx.Array("q", processes)
    results = ctx.Queue()
    flags = []
    children = []
    ports = [host.port for host in peer.hosts]
    share = [subscribers // processes + (i < subscribers % processes) for i in range(processes)]
    paths = [peer.subscribe_path.format(topic=topic) for topic in names]
    for slot, count in enumerate(share):
        flag = ctx.Event()
        child = ctx.Process(
            target=client_process,
            args=(ports, paths, not peer.pubsub, count, slot, flag, stop, delivered, results),
        )
        child.start()
        flags.append(flag)
        children.append(child)
    try:
        for flag in flags:
            if not flag.wait(180):
                raise RuntimeError("the subscribers did not connect in time")
        if peer.pubsub:
            for topic, count in zip(names, followers(share, topics), strict=True):
                wait_for_pubsub(peer.redis, topic, count)
        time.sleep(0.5)
        memory = (rss(workers) - base_rss) / subscribers
        connections = redis_clients(peer.redis)
        cpu_before = cpu(workers)
        load_before = shard_load(peer.redis)

        def kill_worker() -> None:
            for pid in peer.hosts[0].children():
                os.kill(pid, signal.SIGKILL)

        publishing = time.monotonic()
        unanswered = publish_all(
            peer.hosts[0].port,
            [f"/publish/{topic}" for topic in names],
            peer.publish_headers,
            events,
            kill_worker if kill else None,
        )
        published = time.monotonic()
        # Below 10 when the server is saturated: the next publish waits for the previous answer.
        rate = (events - 1) / (published - publishing)
        per_topic = followers(share, topics)
        expected = sum(per_topic[n % topics] for n in range(events))
        # Bounded tail: until every delivery arrived, or 15 s after the last publish.
        while sum(delivered[:]) < expected and time.monotonic() - published < 15:
            time.sleep(0.1)
        tail = time.monotonic() - published
        cpu_used = cpu(peer.workers() if kill else workers) - cpu_before
        load_after = shard_load(peer.redis)
        stop.set()
        reports = [results.get(timeout=120) for _ in children]
    finally:
        # Also when the run failed: clients left running would load the next runs.
        stop.set()
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.terminate()
    latencies = sorted(
        arrived - stamp for r in reports for seen in r["seen"] for arrived, stamp in seen.values()
    )
    got = len(latencies)
    shards: list[dict[str, Any]] = [
        {"topics": 0, "deliveries": 0, "cpu_ms": 0.0, "scripts": 0} for _ in load_after
    ]
    for index, topic in enumerate(names):
        shard = shards[shard_of(peer.redis, topic)]
        shard["topics"] += 1
        # Expected deliveries of the topic's events (what a shard's readers had to serve).
        shard["deliveries"] += per_topic[index] * len(range(index, events, topics))
    for shard, before, after in zip(shards, load_before, load_after, strict=True):
        shard["cpu_ms"] = round(1000 * (after["cpu_s"] - before["cpu_s"]), 1)
        shard["scripts"] = int(after["scripts"] - before["scripts"])
    return {
        "peer": peer.name,
        "subscribers": subscribers,
        "events": events,
        "killed_worker": kill,
        "delivered": got,
        "lost": expected - got,
        "duplicates": sum(r["duplicates"] for r in reports),
        "reconnects": sum(r["reconnects"] for r in reports),
        "refused": sum(r["refused"] for r in reports),
        "unanswered_publishes": unanswered,
        "publish_rate": round(rate, 2),
        "tail_s": round(tail, 2),
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else None,
        "cpu_ms_per_delivery": None if kill or not got else 1000 * cpu_used / got,
        "deliveries_per_cpu_s": None if kill or not cpu_used else got / cpu_used,
        "kib_per_subscriber": memory / 1024,
        "redis_connections": connections,
        "expected": expected,
        "topics": topics,
        "shards": shards,
    }


@dataclass(frozen=True)
class PeerSpec:
    """How to serve one peer: its app (None: the generated project), settings and paths."""

    name: str
    app: str | None
    env: dict[str, str]
    subscribe_path: str
    publish_headers: dict[str, str]
    pubsub: bool
    # Served on a three-shard Redis Cluster rather than one redis-server.
    cluster: bool = False


def peer_specs(connections: int, *, cluster: bool = False) -> list[PeerSpec]:
    generated = PeerSpec(
        "generated channel (Redis Streams)",
        None,
        {
            "FLASK_STREAM_PUBLISH_TOKEN": TOKEN,
            "FLASK_STREAM_RETRY_MS": "300",
            # Room for every subscriber (by default a gevent worker holds 900 open
            # streams, then answers 503) and no lifetime cap within a run.
            "FLASK_STREAM_MAX_OPEN": str(connections),
            "FLASK_STREAM_MAX_SECONDS": "3600",
        },
        "/news?topic={topic}",
        {"Authorization": f"Bearer {TOKEN}"},
        pubsub=False,
    )
    if cluster:
        return [
            dataclasses.replace(
                generated, name="generated channel (Redis Cluster, 3 shards)", cluster=True
            ),
            dataclasses.replace(generated, name="generated channel (one Redis)"),
        ]
    return [
        generated,
        PeerSpec(
            "flask-sse 1.0 (Redis pub/sub)",
            "bench.apps.flask_sse_app:app",
            {},
            "/stream?channel={topic}",
            {},
            pubsub=True,
        ),
    ]


def render(root: Path) -> stack.Project:
    return stack.render_project(
        root / "generated",
        server="gevent",
        endpoints=[
            {
                "name": "news",
                "path": "/news",
                "style": "decorator",
                "format": "sse",
                "session": False,
                "source": "channel",
            }
        ],
    )


@contextlib.contextmanager
def serving(
    spec: PeerSpec, project: stack.Project, root: Path, connections: int, workers: int = 1
) -> Iterator[Peer]:
    """*spec* on fresh servers: a Redis of its own and two gunicorn instances of *workers*
    workers each.

    Fresh for every measurement: memory is then measured from a clean start, and flask-sse's
    streams of departed clients (they wait in pub/sub until their channel gets a message)
    do not hold the connections of the next run.
    """
    workdir = root / f"redis-{time.monotonic_ns()}"
    redis = ClusterGroup(workdir) if spec.cluster else RedisServer(workdir)
    redis.start()
    peer = Peer(spec.name, redis, [], spec.subscribe_path, spec.publish_headers, spec.pubsub)
    args = ["--workers", str(workers), "--worker-connections", str(connections)]
    args += ["--access-logfile", "/dev/null"]
    try:
        for n in range(2):
            peer.hosts.append(
                stack.start_gunicorn(
                    project,
                    log_path=root / f"{'sse' if spec.pubsub else 'generated'}-{n}.log",
                    app=spec.app,
                    pythonpath=[REPO],
                    env={
                        "FLASK_STREAM_BROKER_URL": redis.url,
                        "REDIS_URL": redis.url,
                        "FLASK_SECRET_KEY": SECRET,
                        **spec.env,
                    },
                    extra_args=args,
                )
            )
        yield peer
    finally:
        for host in peer.hosts:
            stack.stop(host)
        redis.stop()


def medians(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per peer, size and kind of run: the run with the median deliveries per CPU-second
    (the median loss for runs with a killed worker), so that every figure of a row comes
    from one run."""
    groups: dict[tuple[str, int, bool], list[dict[str, Any]]] = {}
    for result in results:
        key = (result["peer"], result["subscribers"], result["killed_worker"])
        groups.setdefault(key, []).append(result)
    chosen = []
    for (_, _, killed), runs in groups.items():
        runs.sort(key=lambda r: r["lost"] if killed else r["deliveries_per_cpu_s"] or 0.0)
        chosen.append(runs[(len(runs) - 1) // 2])
    return chosen


def table(rows: list[dict[str, Any]]) -> str:
    """*rows* as the Markdown tables of docs/benchmarks.md."""

    lines = [
        "| peer | subscribers | delivered (of) | lost | duplicates | publishes/s | p50 ms "
        "| p99 ms | server CPU µs / delivery | deliveries / CPU-s | KiB / subscriber "
        "| Redis connections |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in (r for r in rows if not r["killed_worker"]):
        cpu_us = None if r["cpu_ms_per_delivery"] is None else 1000 * r["cpu_ms_per_delivery"]
        lines.append(
            f"| {r['peer']} | {r['subscribers']:,} | {r['delivered']:,} "
            f"({r.get('expected', r['subscribers'] * r['events']):,}) | {r['lost']:,} "
            f"| {r['duplicates']:,} | {number(r['publish_rate'], 1)} | {number(r['p50_ms'])} "
            f"| {number(r['p99_ms'])} "
            f"| {number(cpu_us)} | {number(r['deliveries_per_cpu_s'])} "
            f"| {number(r['kib_per_subscriber'], 1)} | {r['redis_connections']:,} |"
        )
    sharded = [r for r in rows if not r["killed_worker"] and len(r["shards"]) > 1]
    if sharded:
        lines += [
            "",
            "| peer | subscribers | shard | topics | deliveries | Redis CPU ms | script calls |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {r['peer']} | {r['subscribers']:,} | {n} | {shard['topics']} "
            f"| {shard['deliveries']:,} | {shard['cpu_ms']:,.0f} | {shard['scripts']:,} |"
            for r in sharded
            for n, shard in enumerate(r["shards"])
        ]
    killed = [r for r in rows if r["killed_worker"]]
    if killed:
        lines += [
            "",
            "| peer | subscribers | delivered (of) | lost | duplicates | reconnects |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {r['peer']} | {r['subscribers']:,} | {r['delivered']:,} "
            f"({r['subscribers'] * r['events']:,}) | {r['lost']:,} | {r['duplicates']:,} "
            f"| {r['reconnects']:,} |"
            for r in killed
        ]
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Deliveries per server CPU-second and p99 latency, by subscriber count, per peer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name in dict.fromkeys(r["peer"] for r in results):
        rows = [r for r in results if r["peer"] == name and not r["killed_worker"]]
        sizes = [r["subscribers"] for r in rows]
        left.plot(sizes, [r["deliveries_per_cpu_s"] for r in rows], marker="o", label=name)
        right.plot(sizes, [r["p99_ms"] for r in rows], marker="o", label=name)
    for axis, title in ((left, "deliveries per server CPU-second"), (right, "p99 latency (ms)")):
        axis.set_xscale("log")
        axis.set_xlabel("subscribers (10 events/s, 2 gevent workers on 2 instances)")
        axis.set_title(title)
        axis.grid(True, alpha=0.3)
    right.set_yscale("log")
    left.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--events", type=int, default=50, help="events per run (10 per second)")
    parser.add_argument("--kill", action="store_true", help="also kill a worker mid-stream")
    parser.add_argument("--kill-size", type=int, default=1000, help="subscribers for --kill")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size and peer; the table takes the median"
    )
    parser.add_argument(
        "--cluster", action="store_true", help="the generated app on a 3-shard Redis Cluster"
    )
    parser.add_argument(
        "--topics", type=int, help="topics the events are spread over (default 1; 6 with --cluster)"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG plot here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    connections = max([*sizes, args.kill_size]) + 100
    rounds = [(size, False) for size in sizes]
    rounds += [(args.kill_size, True)] if args.kill else []
    topics = args.topics or (6 if args.cluster else 1)
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        project = render(Path(tmp))
        for size, kill in rounds:
            for run in range(args.repeat):
                for spec in peer_specs(connections, cluster=args.cluster):
                    with serving(spec, project, Path(tmp), connections) as peer:
                        result = measure(
                            peer,
                            size,
                            args.events,
                            kill=kill,
                            processes=args.processes,
                            topics=topics,
                        )
                    result["run"] = run
                    print(json.dumps(result), flush=True)
                    results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    rows = medians(results)
    print(table(rows))
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
