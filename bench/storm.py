"""``python -m bench.storm``: every subscriber comes back at once, after a gunicorn ``HUP``.

Two gunicorn instances ("hosts") of two gevent workers each, one Redis, and the subscribers
of one topic split over both hosts, in client processes that reconnect as EventSource does
(after the server's ``retry:`` hint, with ``Last-Event-ID`` when they have one). A publisher
posts 10 stamped events/s to the first host. Once the run is steady, both masters get a
``HUP``: every worker is replaced, every stream ends, and every client reconnects, to a new
worker that has nothing of the topic in memory.

Three peers on the same settings: the generated channel endpoint, the same with
``FLASK_STREAM_MERGE_READS=false`` (each stream reads its own history, as before reads were
merged), and flask-sse 1.0 (Redis pub/sub, no history). Reported per peer:

* the time from the ``HUP`` until every subscriber has an event again on a new connection
  (p50 and the last one), and the reconnections it took;
* the delivery latency (publisher's stamp to the client's read) of the events published
  from the ``HUP`` until every subscriber was back: p50, p99;
* events lost and duplicated over the whole run (each subscriber is owed every event
  published while it was subscribed);
* what Redis ran from the ``HUP`` until every subscriber was back (``INFO commandstats``,
  which counts the commands scripts run too): script calls (``EVALSHA``), of which the
  events published meanwhile are one each; ``XREAD`` calls, the workers' readers waiting
  for entries (each wake with entries reads them with one script, one ``XRANGE``); and
  ``XRANGE`` calls, every read of a log. Reads of the history by the streams are the
  ``XRANGE`` calls beyond the readers' (``XREAD``); the steady state's rates (the 3 s before
  the ``HUP``) are in the JSON;
* the CPU the servers (every gunicorn process, the replaced workers included) and Redis
  used from the ``HUP`` until every subscriber was back.

Not a test: the figures depend on the machine; compare the peers within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import redis

from . import fanout
from .common import number, percentile, raise_open_files, report

# Redis commands reported, by their INFO commandstats name.
COMMANDS = ("xrange", "xrevrange", "evalsha", "xread", "publish", "subscribe")
# The steady state whose command rates are reported: the seconds before the HUP.
STEADY_SECONDS = 3.0


def commandstats(url: str) -> dict[str, float]:
    """How often Redis has run each command of `COMMANDS` since it started, and its CPU
    seconds (``cpu``)."""
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
        cpu = client.info("cpu")
    finally:
        client.close()
    counts: dict[str, float] = {
        name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in COMMANDS
    }
    counts["cpu"] = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return counts


def servers_cpu(peer: fanout.Peer) -> float:
    """CPU seconds of every gunicorn process of *peer* so far: the masters, their live
    workers and the workers they have reaped (replaced after a HUP)."""
    total = 0.0
    for host in peer.hosts:
        with contextlib.suppress(psutil.NoSuchProcess):
            master = psutil.Process(host.pid)
            times = master.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
            for worker in master.children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    worker_times = worker.cpu_times()
                    total += worker_times.user + worker_times.system
    return total


def specs(connections: int) -> list[fanout.PeerSpec]:
    """The generated app with and without merged reads, and flask-sse."""
    generated, flask_sse = fanout.peer_specs(connections)
    unmerged = replace(
        generated,
        name="generated, reads not merged",
        env={**generated.env, "FLASK_STREAM_MERGE_READS": "false"},
    )
    return [generated, unmerged, flask_sse]


class Timeline:
    """Samples Redis's command counts and CPU, and the servers' CPU (``servers cpu``), every
    0.2 s in a thread, from `start` to `stop`: what the end of the storm saw is known only
    afterwards."""

    def __init__(self, peer: fanout.Peer) -> None:
        self.peer = peer
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(10)

    def at(self, moment: float) -> dict[str, float]:
        """The last sample taken at or before *moment* (the first one if none was)."""
        before = [s for t, s in self.samples if t <= moment]
        return before[-1] if before else self.samples[0][1]

    def after(self, moment: float) -> dict[str, float]:
        """The first sample taken at or after *moment* (the last one if none was)."""
        return next((s for t, s in self.samples if t >= moment), self.samples[-1][1])

    def _run(self) -> None:
        while not self._stopped.is_set():
            sample = commandstats(self.peer.redis.url)
            sample["servers cpu"] = servers_cpu(self.peer)
            self.samples.append((time.time(), sample))
            self._stopped.wait(0.2)


def measure(peer: fanout.Peer, subscribers: int, events: int, hup_at: int) -> dict[str, Any]:
    """Subscribe, publish *events* at 10/s, HUP both hosts before event *hup_at*, and tell."""
    topic = f"storm{time.time_ns() % 10**8}"
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    processes = 2
    delivered = ctx.Array("q", processes)
    results = ctx.Queue()
    ports = [host.port for host in peer.hosts]
    path = peer.subscribe_path.format(topic=topic)
    share = [subscribers // processes + (i < subscribers % processes) for i in range(processes)]
    children, flags = [], []
    for slot, count in enumerate(share):
        flag = ctx.Event()
        args = (ports, path, not peer.pubsub, count, slot, flag, stop, delivered, results)
        child = ctx.Process(target=fanout.client_process, args=args)
        child.start()
        children.append(child)
        flags.append(flag)
    timeline = Timeline(peer)
    moments: dict[str, float] = {}

    def hup() -> None:
        moments["hup"] = time.time()
        for host in peer.hosts:
            os.kill(host.pid, signal.SIGHUP)

    try:
        for flag in flags:
            if not flag.wait(300):
                raise RuntimeError("the subscribers did not connect in time")
        if peer.pubsub:
            fanout.wait_for_pubsub(peer.redis, topic, subscribers)
        time.sleep(0.5)
        timeline.start()
        unanswered = fanout.publish_all(
            peer.hosts[0].port, [f"/publish/{topic}"], peer.publish_headers, events, hup, hup_at
        )
        published = time.monotonic()
        expected = subscribers * events
        while sum(delivered[:]) < expected and time.monotonic() - published < 20:
            time.sleep(0.1)
        stop.set()
        reports = [results.get(timeout=300) for _ in children]
    finally:
        stop.set()
        timeline.stop()
        for child in children:
            child.join(timeout=60)
            if child.is_alive():
                child.terminate()
    return summarize(peer, subscribers, events, reports, moments, timeline, unanswered)


def summarize(
    peer: fanout.Peer,
    subscribers: int,
    events: int,
    reports: list[dict[str, Any]],
    moments: dict[str, float],
    timeline: Timeline,
    unanswered: int,
) -> dict[str, Any]:
    """One row: resume times, latency during the storm, losses, Redis's work."""
    hup = moments["hup"]
    seen = [s for r in reports for s in r["seen"]]
    connections = [c for r in reports for c in r["connections"]]
    back = []
    for opened in connections:
        # The first connection opened after the HUP that brought an event.
        after = [first for start, first in opened if start >= hup and first]
        if after:
            back.append(min(after) - hup)
    everyone = max(back) if len(back) == subscribers else None
    until = hup + (everyone if everyone is not None else max(back, default=0.0))
    during = sorted(
        arrived - stamp for s in seen for arrived, stamp in s.values() if hup <= stamp <= until
    )
    received = sum(len(s) for s in seen)
    published = {n for s in seen for n, (_, stamp) in s.items() if hup <= stamp <= until}
    # The steady state: the last 3 s before the HUP.
    steady_from, at_hup = timeline.at(hup - STEADY_SECONDS), timeline.at(hup)
    end = timeline.after(until)
    storm = {name: end[name] - at_hup[name] for name in end}
    steady = {name: (at_hup[name] - steady_from[name]) / STEADY_SECONDS for name in end}
    return {
        "peer": peer.name,
        "subscribers": subscribers,
        "events": events,
        "resumed": len(back),
        "all resumed after s": everyone,
        "p50 resumed after s": statistics.median(back) if back else None,
        "reconnects": sum(r["reconnects"] for r in reports),
        "refused": sum(r["refused"] for r in reports),
        "storm p50 ms": 1000 * percentile(during, 50) if during else None,
        "storm p99 ms": 1000 * percentile(during, 99) if during else None,
        "delivered": received,
        "lost": subscribers * events - received,
        "duplicates": sum(r["duplicates"] for r in reports),
        "unanswered publishes": unanswered,
        "storm seconds": until - hup,
        "published during storm": len(published),
        "redis during storm": storm,
        "redis per second, steady": steady,
    }


def table(rows: list[dict[str, Any]]) -> str:
    """*rows* as the Markdown table of docs/benchmarks.md."""

    lines = [
        "| peer | subscribers | all back after s (p50) | storm p50 ms | storm p99 ms "
        "| lost | duplicates | published in storm | scripts | XREAD | XRANGE "
        "| stream reads (XRANGE - XREAD) | servers CPU s | Redis CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for r in rows:
        storm = r["redis during storm"]
        lines.append(
            f"| {r['peer']} | {r['subscribers']:,} | {number(r['all resumed after s'], 1)} "
            f"({number(r['p50 resumed after s'], 1)}) | {number(r['storm p50 ms'])} "
            f"| {number(r['storm p99 ms'])} | {r['lost']:,} | {r['duplicates']:,} "
            f"| {r['published during storm']:,} | {storm['evalsha']:,.0f} | {storm['xread']:,.0f} "
            f"| {storm['xrange']:,.0f} | {max(0, storm['xrange'] - storm['xread']):,.0f} "
            f"| {storm['servers cpu']:.1f} | {storm['cpu']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__)
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--events", type=int, default=300, help="events at 10/s in all")
    parser.add_argument("--hup-at", type=int, default=100, help="the event the HUP comes before")
    parser.add_argument("--peers", help="a comma-separated subset of the peers' names")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    raise_open_files()
    # Each worker may end up holding most of its host's subscribers.
    connections = args.subscribers + 100
    chosen = specs(connections)
    if args.peers:
        wanted = [name.strip() for name in args.peers.split(",")]
        chosen = [spec for spec in chosen if any(w in spec.name for w in wanted)]
    print(f"load average at the start: {os.getloadavg()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as tmp:
        project = fanout.render(Path(tmp))
        for spec in chosen:
            with fanout.serving(spec, project, Path(tmp), connections, workers=2) as peer:
                row = measure(peer, args.subscribers, args.events, args.hup_at)
            print(json.dumps(row), flush=True)
            rows.append(row)
    report(rows, table, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
