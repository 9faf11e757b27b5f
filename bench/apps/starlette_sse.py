"""What a user would pick instead: sse-starlette's ``EventSourceResponse`` on uvicorn.

Same endpoint and payload as the other apps, written the way sse-starlette's documentation
shows (an async generator of events, its default 15 s ping). Run with
``uvicorn bench.apps.starlette_sse:app``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

STAMP = os.environ.get("BENCH_STAMP") == "1"


async def events(request: Request) -> EventSourceResponse:
    count = int(request.query_params.get("count", "10"))
    interval = float(request.query_params.get("interval", "1"))
    topic = request.query_params.get("topic", "ticks")

    async def generate() -> AsyncIterator[ServerSentEvent]:
        for seq in range(count):
            if seq and interval:
                await asyncio.sleep(interval)
            record: dict[str, object] = {
                "seq": seq,
                "of": count,
                "topic": topic,
                "streams_opened": 1,
            }
            if STAMP:
                record["t"] = time.time_ns()
            yield ServerSentEvent(
                data=json.dumps(record, separators=(",", ":")),
                id=str(seq),
                retry=3000 if seq == 0 else None,
            )
        yield ServerSentEvent(event="end", data="")

    return EventSourceResponse(generate(), ping=15)


app = Starlette(routes=[Route("/events", events)])
