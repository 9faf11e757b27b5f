"""The floor for our stack: Flask, ``stream_with_context``, pre-formatted SSE bytes, nothing else.

No input checks, no session, no heartbeat, no resume, no encoder: one f-string per event.
Run with gunicorn: ``gunicorn bench.apps.bare_flask:app``.

With ``BENCH_BARE_JSON=1`` the payload is built as a dict and JSON-encoded (one shared
``json.JSONEncoder``) instead: the same floor for an app that sends JSON records.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

from flask import Flask, Response, request, stream_with_context

STAMP = os.environ.get("BENCH_STAMP") == "1"
JSON = os.environ.get("BENCH_BARE_JSON") == "1"
ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

app = Flask(__name__)


@app.get("/events")
def events() -> Response:
    count = int(request.args.get("count", "10"))
    interval = float(request.args.get("interval", "1"))
    topic = request.args.get("topic", "ticks")

    @stream_with_context
    def generate() -> Iterator[bytes]:
        for seq in range(count):
            if seq and interval:
                time.sleep(interval)
            if JSON:
                record = {"seq": seq, "of": count, "topic": topic, "streams_opened": 1}
                if STAMP:
                    record["t"] = time.time_ns()
                yield f"id: {seq}\ndata: {ENCODER.encode(record)}\n\n".encode()
                continue
            stamp = f',"t":{time.time_ns()}' if STAMP else ""
            yield (
                f'id: {seq}\ndata: {{"seq":{seq},"of":{count},"topic":"{topic}",'
                f'"streams_opened":1{stamp}}}\n\n'
            ).encode()
        yield b"event: end\ndata:\n\n"

    return Response(
        generate(),  # type: ignore[call-arg]
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
