"""The generated app's stream limits on a real gunicorn: lifetime, and what clients are told.

On gthread only: the limit is kept by the same code under gevent, whose waits the restart
test (test_shutdown.py) covers. The per-worker cap on open streams is proven in
test_concurrency.py.
"""

from __future__ import annotations

import json

import pytest

from harness.client import Stream
from harness.stack import Process

from .conftest import Servers

pytestmark = pytest.mark.deploy

LIFETIME = 1.5


@pytest.fixture(scope="module")
def limited(servers: Servers) -> Process:
    return servers.gunicorn(
        "gthread",
        "gunicorn-gthread-lifetime",
        env={"FLASK_STREAM_MAX_SECONDS": str(LIFETIME), "FLASK_STREAM_RETRY_MS": "1000"},
        extra_args=["--workers", "1"],
    )


def test_a_request_longer_than_the_lifetime_is_a_400_naming_the_limit(limited: Process) -> None:
    with Stream(limited.port, "/events?count=20&interval=0.1") as stream:
        assert stream.status == 400
        assert stream.headers["Content-Type"] == "application/json"
        body = json.loads(stream.response.read())
    assert body == {
        "error": "count and interval ask for a 1.9 s stream, longer than the 1.5 s limit: "
        "ask for fewer events or a shorter interval"
    }
    # Within the limit, the same endpoint streams to the end.
    with Stream(limited.port, "/events?count=10&interval=0.1") as stream:
        events = list(stream.records("sse"))
    assert [e.get("id") for e in events] == [*map(str, range(10)), None]
    assert events[-1]["event"] == "end"


@pytest.mark.parametrize("fmt", ["sse", "ndjson"])
def test_an_endless_stream_ends_at_the_lifetime_with_a_retry_hint(
    limited: Process, fmt: str
) -> None:
    with Stream(limited.port, f"/probe/endless/{fmt}", timeout=10) as stream:
        assert stream.status == 200
        lines = list(stream.lines())
    if fmt == "sse":
        ids = [int(line[4:]) for line in lines if line.startswith("id: ")]
        # Events 0.1 s apart for 1.5 s: the stream ended by itself, at the cap.
        assert 1 <= len(ids) <= 16
        assert ids == list(range(len(ids)))
        assert lines[-3:] == [": stream lifetime reached: reconnect", lines[-2], ""]
        assert 1000 <= int(lines[-2].removeprefix("retry: ")) <= 2000
    else:
        # No in-band hint in NDJSON: the body simply ends, and the client reconnects.
        records = [json.loads(line) for line in lines if line]
        assert 1 <= len(records) <= 16
        assert [r["seq"] for r in records] == list(range(len(records)))
