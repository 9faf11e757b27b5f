"""``python -m bench.fanout``: one publisher, many subscribers, two gunicorn gevent instances.

The generated project's channel endpoint (Redis Streams, one reader per worker) against
flask-sse 1.0 (Redis pub/sub), on the same gunicorn gevent settings and the same workload:
one publisher posting 10 events/s to instance A while the subscribers are split over
instance A and instance B (one gevent worker each, so two workers in all) and one Redis.

Reported per peer and subscriber count: events lost, publish-to-delivery latency p50/p99
(the publisher stamps each event with its send time), server CPU per delivered event (user +
system time of the gunicorn workers while publishing), memory per subscriber (worker RSS
growth while the subscribers connect), and Redis connections in use (``INFO clients``).
``--kill`` then kills instance A's worker mid-stream and counts what each peer's clients,
reconnecting as EventSource does (with ``Last-Event-ID`` when they have one), lose.

Not a test: numbers vary with the machine; compare the peers within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.deploy import stack
from tests.deploy.redis_stack import RedisServer

from .common import REPO

SECRET = "bench-only-secret-key-" + "x" * 32
TOKEN = "bench-publish-token"
RATE = 10.0


@dataclass
class Peer:
    name: str
    hosts: list[stack.Process]
    subscribe_path: str
    publish_headers: dict[str, str]

    def workers(self) -> list[psutil.Process]:
        return [psutil.Process(pid) for host in self.hosts for pid in host.children()]


@dataclass
class Client:
    port: int
    path: str
    last_id: str = ""
    seen: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    reconnects: int = 0


async def run_client(client: Client, stop: asyncio.Event, connected: asyncio.Event | None) -> None:
    """An SSE client that reconnects (with Last-Event-ID when it has one) until *stop*."""
    first = True
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", client.port, limit=2**20)
        except OSError:
            await asyncio.sleep(0.3)
            continue
        extra = f"Last-Event-ID: {client.last_id}\r\n" if client.last_id else ""
        writer.write(f"GET {client.path} HTTP/1.1\r\nHost: bench\r\n{extra}\r\n".encode())
        # flask-sse sends its headers only with the first event: count a client as connected
        # once its request is out (the run then waits for every subscription to settle).
        if first and connected is not None:
            first = False
            connected.set()
        try:
            await reader.readuntil(b"\r\n\r\n")
            data = ""
            while not stop.is_set():
                line = await reader.readline()
                if not line:
                    break
                text = line.decode().rstrip("\r\n")
                if text.startswith("id:"):
                    client.last_id = text[3:].strip()
                elif text.startswith("data:") and '"n"' in text:
                    data = text[5:].strip()
                elif text == "" and data:
                    now = time.time()
                    record = json.loads(data)
                    if record["n"] in client.seen:
                        client.duplicates += 1
                    else:
                        client.seen[record["n"]] = now - record["t"]
                    data = ""
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
        if not stop.is_set():
            client.reconnects += 1
            await asyncio.sleep(0.3)  # EventSource's retry, as the generated app sends


async def publish_all(port: int, path: str, headers: dict[str, str], count: int) -> None:
    start = time.monotonic()
    for n in range(count):
        await asyncio.sleep(max(0.0, start + n / RATE - time.monotonic()))
        body = json.dumps({"n": n, "t": time.time()}).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: bench\r\n{head}Content-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + body
        )
        await reader.read()
        writer.close()


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


def redis_clients(redis: RedisServer) -> int:
    import redis as redis_py

    client = redis_py.Redis.from_url(redis.url)
    try:
        # Minus this very connection.
        return int(client.info("clients")["connected_clients"]) - 1
    finally:
        client.close()


async def measure(
    peer: Peer, redis: RedisServer, subscribers: int, events: int, kill: bool
) -> dict[str, Any]:
    topic = f"bench{subscribers}{'k' if kill else ''}{int(time.time() * 1000) % 100000}"
    workers = peer.workers()
    base_rss = rss(workers)
    stop = asyncio.Event()
    clients = [
        Client(peer.hosts[i % 2].port, peer.subscribe_path.format(topic=topic))
        for i in range(subscribers)
    ]
    tasks = []
    for batch in range(0, subscribers, 200):
        connected = [asyncio.Event() for _ in clients[batch : batch + 200]]
        tasks += [
            asyncio.ensure_future(run_client(c, stop, e))
            for c, e in zip(clients[batch : batch + 200], connected, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected)), timeout=120)
    await asyncio.sleep(3.0)
    memory = (rss(workers) - base_rss) / subscribers
    connections = redis_clients(redis)
    cpu_before = cpu(workers)
    publisher = asyncio.ensure_future(
        publish_all(peer.hosts[0].port, f"/publish/{topic}", peer.publish_headers, events)
    )
    if kill:
        await asyncio.sleep(events / RATE / 3)
        for pid in peer.hosts[0].children():
            os.kill(pid, signal.SIGKILL)
    await publisher
    await asyncio.sleep(2.0)
    cpu_used = cpu(workers) - cpu_before
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = sorted(lat for c in clients for lat in c.seen.values())
    delivered = len(latencies)
    expected = subscribers * events
    return {
        "peer": peer.name,
        "subscribers": subscribers,
        "events": events,
        "killed_worker": kill,
        "delivered": delivered,
        "lost": expected - delivered,
        "duplicates": sum(c.duplicates for c in clients),
        "reconnects": sum(c.reconnects for c in clients),
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else None,
        "cpu_ms_per_delivery": None if kill or not delivered else 1000 * cpu_used / delivered,
        "deliveries_per_cpu_s": None if kill or not cpu_used else delivered / cpu_used,
        "kib_per_subscriber": memory / 1024,
        "redis_connections": connections,
    }


def start_peers(root: Path, redis: RedisServer, connections: int) -> list[Peer]:
    project = stack.render_project(
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
    common = ["--workers", "1", "--worker-connections", str(connections)]
    ours = [
        stack.start_gunicorn(
            project,
            log_path=root / f"generated-{n}.log",
            env={
                "FLASK_STREAM_BROKER_URL": redis.url,
                "FLASK_STREAM_PUBLISH_TOKEN": TOKEN,
                "FLASK_STREAM_RETRY_MS": "300",
                "FLASK_SECRET_KEY": SECRET,
            },
            extra_args=[*common, "--access-logfile", "/dev/null"],
        )
        for n in range(2)
    ]
    theirs = [
        stack.start_gunicorn(
            project,
            log_path=root / f"flask-sse-{n}.log",
            app="bench.apps.flask_sse_app:app",
            pythonpath=[REPO],
            env={"REDIS_URL": redis.url},
            extra_args=[*common, "--access-logfile", "/dev/null"],
        )
        for n in range(2)
    ]
    return [
        Peer(
            "generated channel (Redis Streams)",
            ours,
            "/news?topic={topic}",
            {"Authorization": f"Bearer {TOKEN}"},
        ),
        Peer("flask-sse 1.0 (Redis pub/sub)", theirs, "/stream?channel={topic}", {}),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--events", type=int, default=50, help="events per run (10 per second)")
    parser.add_argument("--kill", action="store_true", help="also kill a worker mid-stream")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        root = Path(tmp)
        redis = RedisServer(root / "redis")
        redis.start()
        peers: list[Peer] = []
        try:
            peers = start_peers(root, redis, max(sizes) + 100)
            for size in sizes:
                for peer in peers:
                    result = asyncio.run(measure(peer, redis, size, args.events, kill=False))
                    print(json.dumps(result), flush=True)
                    results.append(result)
            if args.kill:
                for peer in peers:
                    result = asyncio.run(measure(peer, redis, sizes[0], args.events, kill=True))
                    print(json.dumps(result), flush=True)
                    results.append(result)
        finally:
            for peer in peers:
                for host in peer.hosts:
                    stack.stop(host)
            redis.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
