"""The app asks nginx not to buffer; nginx is told to ignore it."""

from flask import Flask, Response

app = Flask(__name__)
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@app.get("/events")
def events():
    def generate():
        yield "data: 1\n\n"

    return Response(generate(), mimetype="text/event-stream", headers=HEADERS)
