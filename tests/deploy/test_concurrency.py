"""How many streams the generated gunicorn settings hold at once.

Probe streams share one token, so each waits for the same confirmation: the test confirms a
record only when every client holds it, which proves all streams were open together.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from harness.client import many_streams, open_stream, read_until, run_async

from .conftest import VIAS, Servers, Stack, requires_nginx, without_client_limits

pytestmark = [pytest.mark.deploy, requires_nginx]

GEVENT_STREAMS = 500


def stream_cap(servers: Servers) -> int:
    """STREAM_MAX_OPEN as the generated app sets it by default."""
    conf = (servers.project("gthread").root / "src").glob("*/__init__.py")
    [match] = {m for path in conf for m in re.findall(r"STREAM_MAX_OPEN=(\d+)", path.read_text())}
    return int(match)


@pytest.mark.parametrize("capped", [True, False], ids=["default-cap", "cap-at-threads"])
def test_a_full_gthread_worker_refuses_streams_and_still_serves_pages(
    servers: Servers, capped: bool
) -> None:
    threads = int(servers.project("gthread").gunicorn_settings()["threads"])
    cap = stream_cap(servers)
    assert cap < threads
    # One worker, so that every stream competes for the same threads. The negative control
    # raises the cap to the thread count: the streams then take every thread.
    held_streams = cap if capped else threads
    app = servers.gunicorn(
        "gthread",
        f"gunicorn-gthread-cap-{capped}",
        env={} if capped else {"FLASK_STREAM_MAX_OPEN": str(threads)},
        extra_args=["--workers", "1"],
    )
    token = f"held-{capped}"
    confirm_dir = servers.root / "confirm"

    async def scenario() -> tuple[list[bytes], bytes | None, bool]:
        held = [
            await open_stream(app.port, f"/probe/sse?token={token}&count=2")
            for _ in range(held_streams)
        ]
        firsts = await asyncio.wait_for(
            asyncio.gather(*(read_until(r, b'"seq":0') for r, _ in held)), timeout=20
        )
        refused = None
        if capped:
            # Every place is taken: the next stream is refused before it starts.
            reader, writer = await open_stream(app.port, f"/probe/sse?token={token}&count=2")
            refused = await asyncio.wait_for(reader.read(), timeout=10)
            writer.close()
        # A page request while the streams are open: answered only if a thread is free.
        reader, writer = await open_stream(app.port, "/")
        page = asyncio.ensure_future(read_until(reader, b"</html>"))
        # Served while the streams are held (they end only once confirmed, below): with the
        # cap, any time now; at the thread count, never, so a short wait shows it.
        done, _ = await asyncio.wait([page], timeout=20.0 if capped else 3.0)
        page_served = bool(done)
        (confirm_dir / f"{token}.0").touch()
        rests = await asyncio.wait_for(
            asyncio.gather(
                *(read_until(r, b'"status"', d) for (r, _), d in zip(held, firsts, strict=True))
            ),
            timeout=20,
        )
        await asyncio.wait_for(page, timeout=20)
        for _, w in [*held, (reader, writer)]:
            w.close()
        return rests, refused, page_served

    bodies, refused, page_served = run_async(scenario(), timeout=90)

    assert len(bodies) == held_streams
    assert all(b'"status":"confirmed"' in body for body in bodies)
    if capped:
        assert refused is not None
        # Turned away with a 200 and a retry hint, the only answer after which EventSource
        # comes back by itself.
        assert refused.startswith(b"HTTP/1.1 200 ")
        assert b": this server holds %d open streams, its limit: reconnect" % cap in refused
        assert re.search(rb"\nretry: \d+\n", refused)
        assert page_served, "the page waited although the stream cap left threads free"
    else:
        assert not page_served, "a page was served while every thread held a stream"


@pytest.mark.parametrize("stack", ["gevent"], indirect=True)
@pytest.mark.parametrize("via", VIAS)
def test_gevent_holds_hundreds_of_concurrent_streams(
    stack: Stack, servers: Servers, via: str, record_property: pytest.RecordProperty
) -> None:
    token = stack.token()
    port = stack.port(via)
    if via == "nginx":
        # Every stream comes from 127.0.0.1: beyond the generated per-client limits.
        unlimited = without_client_limits(GEVENT_STREAMS + 10)
        port = servers.nginx("gevent", "nginx-gevent-many", stack.app, edit=unlimited).port
    bodies = many_streams(
        port,
        f"/probe/ndjson?token={token}&count=3&wait=30",
        clients=GEVENT_STREAMS,
        on_all={
            b'"seq":0': (stack.confirm_dir / f"{token}.0").touch,
            b'"seq":1': (stack.confirm_dir / f"{token}.1").touch,
        },
        end=b'"status"',
        timeout=60,
    )

    assert len(bodies) == GEVENT_STREAMS
    for body in bodies:
        assert body.startswith(b"HTTP/1.1 200 ")
        assert re.findall(rb'"seq":(\d)', body) == [b"0", b"1", b"2"]
        assert b'"status":"confirmed"' in body
    record_property("concurrent_streams", len(bodies))
