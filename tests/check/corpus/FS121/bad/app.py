"""Event streams without the headers that keep proxies and caches out of the way."""

from flask import Flask, Response

app = Flask(__name__)


def events():
    yield "data: 1\n\n"


@app.get("/bare")
def bare():
    return Response(events(), mimetype="text/event-stream")


@app.get("/half")
def half():
    return Response(events(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})
