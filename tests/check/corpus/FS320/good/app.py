"""Two streams: events (text/event-stream) and rows (application/x-ndjson)."""

from flask import Flask, Response

app = Flask(__name__)
app.config.from_mapping(STREAM_HEARTBEAT_SECONDS=15)
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def events():
    yield "data: 1\n\n"


def rows():
    yield '{"n": 1}\n'


@app.get("/events")
def event_stream():
    return Response(events(), mimetype="text/event-stream", headers=HEADERS)


@app.get("/api/rows")
def row_stream():
    return Response(rows(), mimetype="application/x-ndjson", headers=HEADERS)
