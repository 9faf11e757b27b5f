"""Heartbeats keep an idle stream open through nginx's proxy_read_timeout; without them it is cut.

nginx's read timeout is set to 1 s and the events are 2 s apart. The same generated app runs
twice: with STREAM_HEARTBEAT_SECONDS at 0.3 s, and at 5 s (no beat within the timeout).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from harness.client import Stream, events_and_heartbeats
from harness.stack import Process

from .conftest import SERVERS, Servers, requires_nginx, with_read_timeout

pytestmark = [pytest.mark.deploy, requires_nginx]


@dataclass
class Proxied:
    app: Process
    proxy: Process


@pytest.fixture(scope="module", params=SERVERS)
def heartbeat_stacks(request: pytest.FixtureRequest, servers: Servers) -> dict[str, Proxied]:
    server: str = request.param
    stacks = {}
    for name, seconds in (("beating", "0.3"), ("silent", "5")):
        app = servers.gunicorn(
            server,
            f"gunicorn-{server}-{name}",
            env={"FLASK_STREAM_HEARTBEAT_SECONDS": seconds},
            extra_args=["--workers", "1"],
        )
        proxy = servers.nginx(server, f"nginx-{server}-{name}", app, edit=with_read_timeout("1s"))
        stacks[name] = Proxied(app, proxy)
    return stacks


def test_heartbeats_keep_an_idle_stream_open_past_the_read_timeout(
    heartbeat_stacks: dict[str, Proxied],
) -> None:
    events, beats = events_and_heartbeats(heartbeat_stacks["beating"].proxy.port)

    assert events == ["id: 0", "id: 1", "event: end"]
    assert len(beats) >= 4
    assert set(beats) == {": keep-alive"}


def test_without_heartbeats_nginx_cuts_the_idle_stream(
    heartbeat_stacks: dict[str, Proxied],
) -> None:
    stack = heartbeat_stacks["silent"]
    events, beats = events_and_heartbeats(stack.proxy.port)

    assert events == ["id: 0"]
    assert beats == []
    stack.proxy.wait_for_log(r"upstream timed out .* while reading upstream", timeout=5)


def test_a_client_that_leaves_an_idle_stream_frees_its_worker_within_two_heartbeats(
    heartbeat_stacks: dict[str, Proxied], record_property: pytest.RecordProperty
) -> None:
    # The next event is 60 s away; only heartbeats (every 0.3 s) can find out that the client
    # has gone. The first write after it left usually succeeds, the second one fails.
    app = heartbeat_stacks["beating"].app
    since = len(app.log())
    with Stream(app.port, "/events?count=2&interval=60") as stream:
        lines = stream.lines()
        while next(lines) != "id: 0":
            pass
        left = time.monotonic()
    app.wait_for_log(
        r"stream ended: endpoint=events reason=client_gone \S+ events=1 ", since=since, timeout=10
    )
    freed_after = time.monotonic() - left
    record_property("freed_after_seconds", round(freed_after, 3))
    # Not before one heartbeat: nothing is written, so nothing can fail, before then.
    assert freed_after >= 0.3
