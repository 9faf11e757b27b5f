"""The generated app on the real stack, against sse-starlette on uvicorn and a bare Flask app."""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from . import loadgen, servers
from .common import median, percentile, tree, usage

Log = Callable[[str], None]
MS = 1e6  # ns per ms


def _ms(values: list[int], q: float) -> float:
    return percentile(values, q) / MS


# ------------------------------------------------------------ first event
def first_event(
    projects: dict[str, Any], logs: Path, samples: int, log: Log
) -> list[dict[str, Any]]:
    """First yield to first event at the client, per worker class, direct and through nginx.

    The generated configs are used as they are (their worker counts, threads, connections).
    """
    rows = []
    floor = loadgen.loopback_floor(samples)
    rows.append(
        {
            "server": "loopback floor (two bare processes)",
            "path": "-",
            "p50 ms": _ms(floor, 50),
            "p99 ms": _ms(floor, 99),
            "request->first p50 ms": None,
        }
    )
    for worker_class, project in projects.items():
        for via_nginx in (False, True):
            with servers.generated(project, logs, stamp=True, nginx=via_nginx) as server:
                query = "count=1&interval=0"
                loadgen.first_events(server.port, server.path, query, samples=5)  # warm up
                got = loadgen.first_events(server.port, server.path, query, samples=samples)
            row: dict[str, Any] = {
                "server": f"generated, gunicorn {worker_class}",
                "path": "nginx" if via_nginx else "direct",
                "p50 ms": _ms(got.from_stamp_ns, 50),
                "p99 ms": _ms(got.from_stamp_ns, 99),
                "request->first p50 ms": _ms(got.to_first_ns, 50),
            }
            log(
                f"  first event {row['server']} {row['path']}: p50 {row['p50 ms']:.3f} ms, "
                f"p99 {row['p99 ms']:.3f} ms, request->first {row['request->first p50 ms']:.3f} ms"
            )
            rows.append(row)
    return rows


# ------------------------------------------------------------ one stream
@contextlib.contextmanager
def _pinned(server: servers.Server) -> Iterator[None]:
    """Server on the last core, this client on the first: the same placement for every server
    run, where the scheduler would otherwise move them around (and the figures with them)."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        yield
        return
    for pid in server.pids:
        for proc in tree(pid):
            with contextlib.suppress(psutil.Error):
                proc.cpu_affinity([cores[-1]])
    os.sched_setaffinity(0, {cores[0]})
    try:
        yield
    finally:
        os.sched_setaffinity(0, set(cores))


def _throughput(server: servers.Server, requests: int) -> dict[str, Any]:
    with _pinned(server):
        return _throughput_pinned(server, requests)


def _throughput_pinned(server: servers.Server, requests: int) -> dict[str, Any]:
    query = "count=1000&interval=0"
    loadgen.one_stream(server.port, server.path, query, requests=3)  # warm up
    before = usage(server.pids)
    result = loadgen.one_stream(server.port, server.path, query, requests=requests)
    after = usage(server.pids)
    cpu = after.cpu - before.cpu
    return {
        "server": server.name,
        "events": result.events,
        "events/s": result.events / result.seconds,
        "server CPU us/event": cpu / result.events * 1e6,
        "server CPU busy %": 100 * cpu / result.seconds,
        "client CPU busy %": 100 * result.client_cpu / result.seconds,
    }


def one_stream(
    projects: dict[str, Any],
    logs: Path,
    requests: int,
    rounds: int,
    log: Log,
    baselines: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Events/s on one stream, one worker process each, 1000 events per request, keep-alive.

    The rounds alternate between the servers, and each figure is the median over rounds.
    *baselines* maps a git ref to the gevent project rendered from it: the same app before a
    change, measured in the same rounds (``--baseline REF``).
    """
    gevent = projects["gevent"]
    makers: dict[str, Callable[[], Any]] = {
        "generated/gevent": lambda: servers.generated(gevent, logs, stamp=False, workers=1),
        "bare Flask/gevent": lambda: servers.bare_flask(gevent, logs, stamp=False, workers=1),
        "bare Flask+JSON/gevent": lambda: servers.bare_flask(
            gevent, logs, stamp=False, workers=1, json_payload=True
        ),
        "sse-starlette/uvicorn": lambda: servers.starlette(logs, stamp=False),
    }
    for ref, project in (baselines or {}).items():
        makers[f"generated/gevent @{ref}"] = partial(
            servers.generated, project, logs, stamp=False, workers=1
        )
    if "gthread" in projects:
        gthread = projects["gthread"]
        makers["generated/gthread"] = lambda: servers.generated(
            gthread, logs, stamp=False, workers=1
        )
        makers["bare Flask/gthread"] = lambda: servers.bare_flask(
            gthread, logs, stamp=False, workers=1
        )
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in makers}
    for _ in range(rounds):
        for name, make in makers.items():
            with make() as server:
                samples[name].append(_throughput(server, requests))
    rows = []
    for name, runs in samples.items():
        row = {"server": name, "events": sum(r["events"] for r in runs)}
        for key in ("events/s", "server CPU us/event", "server CPU busy %", "client CPU busy %"):
            row[key] = median([r[key] for r in runs])
            if key == "events/s":
                row["best events/s"] = max(r[key] for r in runs)
        log(
            f"  one stream {name}: {row['events/s']:,.0f} events/s, "
            f"{row['server CPU us/event']:.1f} us CPU/event, client busy "
            f"{row['client CPU busy %']:.0f} %"
        )
        rows.append(row)
    return rows


# ------------------------------------------------------------ proxies
def proxies(
    project: Any,
    configs: dict[str, Any],
    logs: Path,
    samples: int,
    requests: int,
    log: Log,
) -> list[dict[str, Any]]:
    """Time to first event and one-stream events/s, direct and through each generated proxy.

    One gunicorn worker each (the project's worker class), so the proxies are compared on the
    same app in the same run; *configs* maps a proxy to a project rendered with it, whose
    deploy/ config is used as generated (plain HTTP/1.1 listener).
    """
    rows = []
    for kind in ("direct", *configs):
        front = None if kind == "direct" else configs[kind]
        with servers.generated(project, logs, stamp=True, workers=1, proxy=front) as server:
            query = "count=1&interval=0"
            loadgen.first_events(server.port, server.path, query, samples=5)  # warm up
            got = loadgen.first_events(server.port, server.path, query, samples=samples)
        with servers.generated(project, logs, stamp=False, workers=1, proxy=front) as server:
            rate = _throughput(server, requests)
        row = {
            "server": f"generated, gunicorn {project.server}",
            "path": kind,
            "first event p50 ms": _ms(got.from_stamp_ns, 50),
            "first event p99 ms": _ms(got.from_stamp_ns, 99),
            "request->first p50 ms": _ms(got.to_first_ns, 50),
            "events/s": rate["events/s"],
            "CPU us/event (app + proxy)": rate["server CPU us/event"],
        }
        log(
            f"  {kind}: first event p50 {row['first event p50 ms']:.3f} ms, "
            f"{row['events/s']:,.0f} events/s"
        )
        rows.append(row)
    return rows


# ------------------------------------------------------------ in-process
def _drain_wsgi(app: Any, query: str) -> tuple[int, float]:
    """Iterate one response of *app* in this process; (bytes, seconds)."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/events",
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "HTTP_HOST": "127.0.0.1",
    }
    start = time.perf_counter()
    body = app(environ, lambda status, headers, exc_info=None: None)
    size = 0
    try:
        for chunk in body:
            size += len(chunk)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return size, time.perf_counter() - start


def in_process(project: Any, repeats: int, log: Log) -> list[dict[str, Any]]:
    """CPU per event without a server: the generated endpoint, the bare Flask app, a bare
    generator yielding the same bytes, and the encoder call alone."""
    import logging

    sys.path.insert(0, str(project.root / "src"))
    try:
        package = importlib.import_module(project.package)
        sse = importlib.import_module(f"{project.package}.sse")
        logging.getLogger(project.package).setLevel(logging.WARNING)
        generated_app = package.create_app({"SECRET_KEY": servers.SECRET})
        bare = importlib.import_module("bench.apps.bare_flask").app
        query = "count=1000&interval=0"
        # The bytes the generated endpoint sends, to replay from a bare generator.
        chunks: list[bytes] = []
        environ_body = generated_app.test_client().get(f"/events?{query}")
        payload = environ_body.get_data()
        chunks = [block + b"\n\n" for block in payload.split(b"\n\n") if block]

        def bare_generator() -> Iterator[bytes]:
            yield from chunks

        def time_it(fn: Callable[[], float]) -> float:
            fn()
            gc.collect()
            return min(fn() for _ in range(repeats))

        events = len(chunks)
        record = {"seq": 1, "of": 1000, "topic": "ticks", "streams_opened": 1}

        def encoder() -> float:
            start = time.perf_counter()
            for seq in range(1000):
                sse.format_json_event(record, id=str(seq))
            return time.perf_counter() - start

        shared = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

        def dumps() -> float:
            start = time.perf_counter()
            for _ in range(1000):
                shared.encode(record)
            return time.perf_counter() - start

        def plain() -> float:
            start = time.perf_counter()
            for _ in bare_generator():
                pass
            return time.perf_counter() - start

        figures = {
            "bare generator, same bytes (no Flask)": time_it(plain) / events,
            "bare Flask app (stream_with_context + f-string)": time_it(
                lambda: _drain_wsgi(bare.wsgi_app, query)[1]
            )
            / events,
            "generated endpoint (all features)": time_it(
                lambda: _drain_wsgi(generated_app.wsgi_app, query)[1]
            )
            / events,
            "generated encoder alone (sse.format_json_event)": time_it(encoder) / 1000,
            "JSON encoding of the same record alone": time_it(dumps) / 1000,
        }
    finally:
        sys.path.remove(str(project.root / "src"))
    rows = [{"path": k, "us/event": v * 1e6} for k, v in figures.items()]
    for row in rows:
        log(f"  in-process {row['path']}: {row['us/event']:.2f} us/event")
    return rows


# ------------------------------------------------------------ many streams
def concurrency(
    projects: dict[str, Any],
    logs: Path,
    sizes: list[int],
    events: int,
    apps: list[str],
    processes: int,
    log: Log,
) -> list[dict[str, Any]]:
    """Concurrent 1 event/s streams, one server worker process each, direct."""
    gevent = projects["gevent"]
    rows = []
    for size in sizes:
        connections = max(1000, size + 100)
        makers: dict[str, Callable[[], Any]] = {
            "generated/gevent": partial(
                servers.generated, gevent, logs, stamp=True, workers=1, connections=connections
            ),
            "bare Flask/gevent": partial(
                servers.bare_flask, gevent, logs, stamp=True, workers=1, connections=connections
            ),
            "sse-starlette/uvicorn": lambda: servers.starlette(logs, stamp=True),
        }
        if "gthread" in projects:
            # The generated gthread config as it is: its workers x threads bound the streams.
            makers["generated/gthread"] = lambda: servers.generated(
                projects["gthread"], logs, stamp=True
            )
        for name in apps:
            with makers[name]() as server:
                rows.append(_hold(server, size, events, processes, log))
    return rows


def _hold(
    server: servers.Server, size: int, events: int, processes: int, log: Log
) -> dict[str, Any]:
    query = f"count={events}&interval=1"
    loadgen.first_events(server.port, server.path, "count=2&interval=0", samples=3)  # warm up
    time.sleep(0.5)
    base = usage(server.pids)
    at_ready: dict[str, Any] = {}

    def sample() -> None:
        at_ready["usage"] = usage(server.pids)

    max_seconds = events + 20 + size / 500
    result = loadgen.hold_streams(
        server.port,
        server.path,
        query,
        streams=size,
        events_per_stream=events,
        max_seconds=max_seconds,
        processes=processes,
        on_ready=sample,
    )
    end = usage(server.pids)
    ready = at_ready.get("usage", end)
    lat = result.latencies_ns
    row = {
        "server": server.name,
        "streams": size,
        "events expected": result.expected_events,
        "events received": result.received,
        "lost": result.lost,
        "streams complete": result.complete_streams,
        "failed connects": result.failed_connects,
        "p50 ms": _ms(lat, 50),
        "p99 ms": _ms(lat, 99),
        "max ms": max(lat) / MS if lat else float("nan"),
        "KB/stream": (ready.rss - base.rss) / size / 1024,
        # Everything from the first connection to the last close, and the steady state alone
        # (from the moment every stream was open to the end, connection set-up excluded).
        "server CPU us/event": (end.cpu - base.cpu) / max(1, result.received) * 1e6,
        "steady CPU us/event": (end.cpu - ready.cpu)
        / max(1, result.received - result.received_at_ready)
        * 1e6,
        "client CPU busy %": 100 * result.client_cpu / max(1e-9, result.client_wall * processes),
        "all open after s": result.ready_seconds,
        "errors": "; ".join(result.errors),
    }
    log(
        f"  {size} streams {server.name}: lost {row['lost']}, p50 {row['p50 ms']:.2f} ms, "
        f"p99 {row['p99 ms']:.2f} ms, {row['KB/stream']:.1f} KB/stream, "
        f"{row['server CPU us/event']:.0f} us CPU/event, "
        f"client busy {row['client CPU busy %']:.0f} %"
    )
    return row
