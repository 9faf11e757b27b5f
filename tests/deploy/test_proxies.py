"""What each generated proxy config adds besides not buffering: read timeouts that heartbeats
outlast, and (nginx) per-client limits that leave reconnecting streams alone.

nginx's heartbeat behaviour is proven in test_heartbeat.py; here the same is shown through
Caddy and Apache httpd, with their read timeout set to 1 s and events 2 s apart. The same
generated app runs twice: with FLASK_STREAM_HEARTBEAT_SECONDS at 0.3 s, and at 5 s (no beat
within the timeout), the control that shows the proxy does cut a silent stream.
"""

from __future__ import annotations

import asyncio
import http.client
import re
from dataclasses import dataclass

import pytest

from harness.client import HOST, events_and_heartbeats, read_until, run_async
from harness.stack import Process

from .conftest import Servers, Stack, require_proxy, with_read_timeout

pytestmark = [pytest.mark.deploy]

# What each proxy logs when its read timeout cuts a stream.
TIMEOUT_LOGS = {
    "caddy": r"reading from backend.*i/o timeout",
    "apache": r"The timeout specified has expired.*AH01110",
}


@dataclass
class Proxied:
    app: Process
    proxy: Process


@pytest.fixture(scope="module")
def heartbeat_apps(servers: Servers) -> dict[str, Process]:
    """One gthread worker beating every 0.3 s, and one beating only after 5 s of silence."""
    return {
        name: servers.gunicorn(
            "gthread",
            f"gunicorn-proxies-{name}",
            env={"FLASK_STREAM_HEARTBEAT_SECONDS": seconds},
            extra_args=["--workers", "1"],
        )
        for name, seconds in (("beating", "0.3"), ("silent", "5"))
    }


@pytest.fixture(scope="module", params=["caddy", "apache"])
def short_timeouts(
    request: pytest.FixtureRequest, servers: Servers, heartbeat_apps: dict[str, Process]
) -> tuple[str, dict[str, Proxied]]:
    """Proxy *kind* with a 1 s read timeout in front of each heartbeat app."""
    kind: str = request.param
    require_proxy(kind)
    return kind, {
        name: Proxied(
            app,
            servers.proxy(kind, f"{kind}-timeout-{name}", app, with_read_timeout("1", kind)),
        )
        for name, app in heartbeat_apps.items()
    }


def test_heartbeats_keep_an_idle_stream_open_past_each_proxys_read_timeout(
    short_timeouts: tuple[str, dict[str, Proxied]],
) -> None:
    _, stacks = short_timeouts
    events, beats = events_and_heartbeats(stacks["beating"].proxy.port)

    assert events == ["id: 0", "id: 1", "event: end"]
    assert len(beats) >= 4
    assert set(beats) == {": keep-alive"}


def test_without_heartbeats_each_proxy_cuts_the_idle_stream(
    short_timeouts: tuple[str, dict[str, Proxied]],
) -> None:
    kind, stacks = short_timeouts
    silent = stacks["silent"]
    events, beats = events_and_heartbeats(silent.proxy.port)

    assert events == ["id: 0"]
    assert beats == []
    silent.proxy.wait_for_log(TIMEOUT_LOGS[kind], timeout=5)


# ------------------------------------------------------------- nginx per-client limits
def nginx_setting(stack: Stack, name: str) -> str:
    """The argument of an uncommented top-level directive of the generated nginx.conf."""
    [value] = re.findall(rf"(?m)^\s*{name}\s+([^;]+);", stack.project.nginx_conf.read_text())
    return str(value)


@pytest.fixture
def fresh_nginx(stack: Stack, servers: Servers, request: pytest.FixtureRequest) -> Process:
    """An nginx of its own (the generated config), so its limit counters start at zero."""
    return servers.nginx(
        stack.project.server, f"nginx-limits-{request.node.name}".replace("/", "_"), stack.app
    )


@pytest.mark.parametrize("stack", ["gevent"], indirect=True)
def test_nginx_caps_concurrent_streams_per_client_with_a_429(
    stack: Stack, fresh_nginx: Process
) -> None:
    _, limit = nginx_setting(stack, "limit_conn").split()
    token = stack.token()
    request = (
        f"GET /probe/sse?token={token}&count=2&wait=30 HTTP/1.1\r\nHost: {HOST}\r\n"
        "Accept: text/event-stream\r\nConnection: close\r\n\r\n"
    ).encode()

    async def open_one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(HOST, fresh_nginx.port)
        writer.write(request)
        await writer.drain()
        return reader, writer

    async def scenario() -> tuple[list[bytes], bytes, list[bytes]]:
        held = [await open_one() for _ in range(int(limit))]
        firsts = await asyncio.wait_for(
            asyncio.gather(*(read_until(r, b'"seq":0') for r, _ in held)), timeout=30
        )
        # Every allowed connection is streaming: the next one is refused before streaming.
        reader, writer = await open_one()
        refused = await asyncio.wait_for(read_until(reader, b"\r\n\r\n"), timeout=10)
        writer.close()
        (stack.confirm_dir / f"{token}.0").touch()
        rests = await asyncio.wait_for(
            asyncio.gather(
                *(read_until(r, b'"status"', d) for (r, _), d in zip(held, firsts, strict=True))
            ),
            timeout=30,
        )
        for _, w in held:
            w.close()
        return firsts, refused, rests

    firsts, refused, rests = run_async(scenario(), timeout=90)

    assert all(b" 200 " in first.split(b"\r\n", 1)[0] for first in firsts)
    assert refused.startswith(b"HTTP/1.1 429 ")
    assert all(b'"status":"confirmed"' in body for body in rests)


def statuses(
    nginx: Process, method: str, path: str, headers: dict[str, str], count: int
) -> list[int]:
    """The statuses of *count* requests sent one after the other on one connection."""
    conn = http.client.HTTPConnection(HOST, nginx.port, timeout=10)
    try:
        found = []
        for _ in range(count):
            body = b"x" if method == "POST" else None
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            found.append(response.status)
        return found
    finally:
        conn.close()


@pytest.mark.parametrize("stack", ["gevent"], indirect=True)
def test_nginx_rate_limits_ordinary_requests_but_never_eventsource_reconnects(
    stack: Stack, fresh_nginx: Process
) -> None:
    # A burst of reconnects, as after a deploy: every one is let through. The stream path
    # exempts them, whatever their headers.
    reconnects = statuses(fresh_nginx, "GET", "/events?count=1&interval=0", {}, 150)
    # A burst of ordinary requests (the control): beyond the allowed burst of 40, 429. At
    # 20 requests/s refilled, 300 leave room for a slow, loaded machine.
    ordinary = statuses(fresh_nginx, "GET", "/static/demo.js", {}, 300)

    assert set(reconnects) <= {200, 204}
    assert 429 in ordinary
    assert ordinary[:40] == [200] * 40


@pytest.mark.parametrize("stack", ["gevent"], indirect=True)
def test_an_eventsource_header_exempts_nothing_from_the_rate_limit(
    stack: Stack, fresh_nginx: Process
) -> None:
    """A header is the client's to choose: with it, a burst of pages or of token guesses at
    the publish route is limited all the same (an exempt request is never refused)."""
    sse = {"Accept": "text/event-stream"}
    pages = statuses(fresh_nginx, "GET", "/", sse, 120)
    guesses = statuses(
        fresh_nginx, "POST", "/publish/news", {**sse, "Authorization": "Bearer guess"}, 120
    )

    assert pages[:40] == [200] * 40
    assert pages.count(429) >= 40
    assert guesses.count(429) >= 40
