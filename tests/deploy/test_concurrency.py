"""How many streams the generated gunicorn settings hold at once.

Probe streams share one token, so each waits for the same confirmation: the test confirms a
record only when every client holds it, which proves all streams were open together.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from .client import many_streams, open_stream, read_until, run_async
from .conftest import VIAS, Servers, Stack, requires_nginx

pytestmark = [pytest.mark.deploy, requires_nginx]

GEVENT_STREAMS = 500


def test_a_gthread_worker_holds_as_many_streams_as_threads_and_queues_the_next(
    servers: Servers,
) -> None:
    threads = int(servers.project("gthread").gunicorn_settings()["threads"])
    # One worker, so that every stream competes for the same `threads` threads.
    app = servers.gunicorn("gthread", "gunicorn-gthread-capacity", extra_args=["--workers", "1"])
    confirm_dir = servers.root / "confirm"

    async def scenario() -> tuple[list[bytes], bytes, bool]:
        held = [
            await open_stream(app.port, "/probe/sse?token=held&count=2") for _ in range(threads)
        ]
        firsts = await asyncio.wait_for(
            asyncio.gather(*(read_until(r, b'"seq":0') for r, _ in held)), timeout=20
        )
        # Every thread is now inside a stream: one more client has to wait for a free one.
        reader, writer = await open_stream(app.port, "/probe/sse?token=extra&count=1")
        extra = asyncio.ensure_future(read_until(reader, b'"seq":0'))
        done, _ = await asyncio.wait([extra], timeout=1.0)
        served_while_full = bool(done)
        (confirm_dir / "held.0").touch()
        rests = await asyncio.wait_for(
            asyncio.gather(
                *(read_until(r, b'"status"', d) for (r, _), d in zip(held, firsts, strict=True))
            ),
            timeout=20,
        )
        extra_body = await asyncio.wait_for(read_until(reader, b'"status"', await extra), 20)
        for _, w in [*held, (reader, writer)]:
            w.close()
        return rests, extra_body, served_while_full

    bodies, extra_body, served_while_full = run_async(scenario(), timeout=60)

    assert len(bodies) == threads
    assert all(b'"seq":1' in body and b'"status":"confirmed"' in body for body in bodies)
    assert not served_while_full, "a stream beyond the thread count was served at once"
    assert b'"seq":0' in extra_body and b'"status":"confirmed"' in extra_body


@pytest.mark.parametrize("stack", ["gevent"], indirect=True)
@pytest.mark.parametrize("via", VIAS)
def test_gevent_holds_hundreds_of_concurrent_streams(
    stack: Stack, via: str, record_property: pytest.RecordProperty
) -> None:
    token = stack.token()
    bodies = many_streams(
        stack.port(via),
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
