"""``python -m bench.publish``: what an event costs to publish, through each door.

The generated channel project on one Redis, every door publishing the same events (about
100 bytes of JSON each, a history of 1,000 per topic, so every publish also trims):

* the floor: a bare redis-py ``XADD ... MAXLEN ~ 1000`` loop, one round trip per event;
* ``publish()`` in a loop, and ``publish_many()`` in batches (``--batch`` events), called in
  this process inside an app context, as a job would;
* ``POST /publish/<topic>``: one event per request, and NDJSON batches, on one gunicorn
  gevent worker over one kept-alive connection;
* ``flask publish TOPIC -`` reading every event as a line of standard input (its start-up,
  imports and app creation included).

Reported per door: events/s (wall clock), the CPU of the publishing side per event (this
process for the function doors and the floor; the gunicorn worker for the HTTP doors, with
the client's CPU beside it; the ``flask`` process for the command line), events per second
per core of it, and Redis's own CPU per event (``INFO cpu``).

Not a test: the figures depend on the machine; compare the doors within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from harness import stack
from harness.redis_stack import RedisServer

from . import fanout
from .common import report, usage

PAYLOAD = json.dumps({"order": 12345, "status": "shipped", "items": ["book", "pen"], "pad": ""})
PAYLOAD = PAYLOAD.replace('""', '"' + "x" * (100 - len(PAYLOAD)) + '"')


def redis_cpu(client: redis.Redis) -> float:
    """Seconds of CPU the Redis server has used."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def row(
    door: str,
    events: int,
    seconds: float,
    cpu: float,
    redis_seconds: float,
    client_cpu: float | None = None,
) -> dict[str, Any]:
    return {
        "door": door,
        "events": events,
        "events/s": events / seconds,
        "CPU us/event": 1e6 * cpu / events,
        "events/s per core": events / cpu if cpu else None,
        "Redis CPU us/event": 1e6 * redis_seconds / events,
        "client CPU us/event": None if client_cpu is None else 1e6 * client_cpu / events,
    }


@contextlib.contextmanager
def measured(client: redis.Redis, cpu: Callable[[], float]) -> Iterator[dict[str, float]]:
    """Wall time, *cpu* and Redis's CPU over the ``with`` block, in the yielded dict."""
    took: dict[str, float] = {}
    start, cpu_start, redis_start = time.perf_counter(), cpu(), redis_cpu(client)
    yield took
    took["seconds"] = time.perf_counter() - start
    took["cpu"] = cpu() - cpu_start
    took["redis_seconds"] = redis_cpu(client) - redis_start


def process_cpu() -> float:
    return time.process_time()


def floor(client: redis.Redis, events: int) -> dict[str, Any]:
    key = f"floor-{time.time_ns()}"
    with measured(client, process_cpu) as took:
        for _ in range(events):
            client.xadd(key, {"event": "", "data": PAYLOAD}, maxlen=1000, approximate=True)
    return row("bare redis-py XADD loop (floor)", events, **took)


def functions(project: stack.Project, url: str, events: int, batch: int) -> list[dict[str, Any]]:
    """``publish()`` and ``publish_many()`` in this process, as a job calls them."""
    sys.path.insert(0, str(project.root / "src"))
    try:
        package = importlib.import_module(project.package)
        channels = importlib.import_module(f"{project.package}.channels")
        app = package.create_app({"SECRET_KEY": fanout.SECRET, "STREAM_BROKER_URL": url})
        client = redis.Redis.from_url(url)
        rows = []
        with app.app_context():
            topic = f"one-{time.time_ns()}"
            channels.publish(topic, PAYLOAD)  # the script is loaded once
            with measured(client, process_cpu) as took:
                for _ in range(events):
                    channels.publish(topic, PAYLOAD)
            rows.append(row("publish() in a loop", events, **took))
            topic = f"many-{time.time_ns()}"
            with measured(client, process_cpu) as took:
                for _ in range(events // batch):
                    channels.publish_many(topic, [PAYLOAD] * batch)
            rows.append(row(f"publish_many(), {batch} per call", events, **took))
        app.extensions["channels"].close()
        client.close()
        return rows
    finally:
        sys.path.remove(str(project.root / "src"))


def http_doors(
    project: stack.Project, url: str, events: int, batch: int, logs: Path
) -> list[dict[str, Any]]:
    """The publish route on one gunicorn gevent worker, one kept-alive connection."""
    app = stack.start_gunicorn(
        project,
        log_path=logs / "gunicorn-publish.log",
        env={"FLASK_STREAM_BROKER_URL": url, "FLASK_STREAM_PUBLISH_TOKEN": fanout.TOKEN},
        extra_args=["--workers", "1", "--access-logfile", "/dev/null"],
    )
    client = redis.Redis.from_url(url)
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
    auth = {"Authorization": f"Bearer {fanout.TOKEN}"}
    line = json.dumps({"data": PAYLOAD}) + "\n"

    def post(topic: str, body: str, headers: dict[str, str]) -> None:
        conn.request("POST", f"/publish/{topic}", body=body.encode(), headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            raise RuntimeError(f"the publish route answered {response.status}")

    def worker_cpu() -> float:
        return usage(app.children()).cpu

    rows = []
    try:
        post("warm", PAYLOAD, auth)
        topic = f"http-{time.time_ns()}"
        client_start = process_cpu()
        with measured(client, worker_cpu) as took:
            for _ in range(events):
                post(topic, PAYLOAD, auth)
        client_cpu = process_cpu() - client_start
        rows.append(row("POST, one event each", events, **took, client_cpu=client_cpu))
        topic = f"ndjson-{time.time_ns()}"
        headers = {**auth, "Content-Type": "application/x-ndjson"}
        client_start = process_cpu()
        with measured(client, worker_cpu) as took:
            for _ in range(events // batch):
                post(topic, line * batch, headers)
        client_cpu = process_cpu() - client_start
        rows.append(row(f"POST NDJSON, {batch} per request", events, **took, client_cpu=client_cpu))
    finally:
        conn.close()
        client.close()
        stack.stop(app)
    return rows


def command_line(project: stack.Project, url: str, events: int) -> dict[str, Any]:
    """``flask publish TOPIC -`` with one line per event, a process of its own."""
    flask = Path(sys.executable).with_name("flask")
    env = {
        **os.environ,
        "PYTHONPATH": str(project.root / "src"),
        "FLASK_SECRET_KEY": fanout.SECRET,
        "FLASK_STREAM_BROKER_URL": url,
    }
    client = redis.Redis.from_url(url)
    lines = (PAYLOAD + "\n") * events
    args = [str(flask), "--app", project.package, "publish", f"cli-{time.time_ns()}", "-"]
    start, redis_start = time.perf_counter(), redis_cpu(client)
    popen = subprocess.Popen(
        args,
        cwd=project.root,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert popen.stdin is not None
    popen.stdin.write(lines.encode())
    popen.stdin.close()
    _, status, rusage = os.wait4(popen.pid, 0)
    popen.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    redis_seconds = redis_cpu(client) - redis_start
    client.close()
    if popen.returncode != 0:
        raise RuntimeError(f"flask publish exited with {popen.returncode}")
    cpu = rusage.ru_utime + rusage.ru_stime
    return row("flask publish - (start-up included)", events, seconds, cpu, redis_seconds)


def table(rows: list[dict[str, Any]]) -> str:
    """*rows* as the Markdown table of docs/benchmarks.md, with each door's CPU per event
    against the floor's."""
    floor_us = rows[0]["CPU us/event"]
    lines = [
        "| door | events/s | CPU µs / event | events/s per core | x floor (CPU) "
        "| Redis CPU µs / event |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        client = r.get("client CPU us/event")
        cpu = f"{r['CPU us/event']:,.1f}" + (f" (client {client:,.1f})" if client else "")
        lines.append(
            f"| {r['door']} | {r['events/s']:,.0f} | {cpu} | {r['events/s per core']:,.0f} "
            f"| {r['CPU us/event'] / floor_us:.2f}x | {r['Redis CPU us/event']:,.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.publish", description=__doc__)
    parser.add_argument("--events", type=int, default=20000, help="events per door")
    parser.add_argument("--batch", type=int, default=100, help="events per batch")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    print(f"load average at the start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        project = fanout.render(Path(tmp))
        server = RedisServer(Path(tmp) / "redis")
        with server.running():
            client = server.client()
            rows = [floor(client, args.events)]
            client.close()
            rows += functions(project, server.url, args.events, args.batch)
            rows += http_doors(project, server.url, args.events, args.batch, Path(tmp))
            rows.append(command_line(project, server.url, args.events))
    for r in rows:
        print(json.dumps(r), flush=True)
    report(rows, table, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
