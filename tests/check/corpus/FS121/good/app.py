"""Both headers, from a shared constant or set in the view."""

from flask import Flask, Response

app = Flask(__name__)
SSE = "text/event-stream"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def events():
    yield "data: 1\n\n"


@app.get("/shared")
def shared():
    return Response(events(), mimetype=SSE, headers=SSE_HEADERS)


@app.get("/set")
def set_in_view():
    response = Response(events(), content_type="text/event-stream; charset=utf-8")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
