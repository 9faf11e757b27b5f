"""A stream that sends a heartbeat every 30 s while idle."""

from flask import Flask, Response, current_app, stream_with_context

app = Flask(__name__)
app.config.from_mapping(HEARTBEAT_SECONDS=30)
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@app.get("/events")
def events():
    @stream_with_context
    def generate():
        yield f": heartbeat every {current_app.config['HEARTBEAT_SECONDS']} s\n\n"

    return Response(generate(), mimetype="text/event-stream", headers=HEADERS)


@app.get("/ticker")
def ticker():
    @stream_with_context
    def generate():
        yield f": heartbeat every {current_app.config['HEARTBEAT_SECONDS']} s\n\n"

    return Response(generate(), mimetype="text/event-stream", headers=HEADERS)
