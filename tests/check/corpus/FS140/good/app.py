"""Flask-Compress with the types it compresses configured: none of the streams' types."""

from flask import Flask, Response
from flask_compress import Compress

app = Flask(__name__)
app.config.from_object("config")
Compress(app)


@app.get("/events")
def events():
    def generate():
        yield "data: 1\n\n"

    return Response(
        generate(),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@app.get("/rows")
def rows():
    def generate():
        yield "a,b\n"

    return Response(generate(), mimetype="text/csv")
