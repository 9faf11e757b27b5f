"""One stream sends X-Accel-Buffering: no; the other is covered by its location."""

from flask import Flask, Response

app = Flask(__name__)


def lines():
    yield "a\n"


@app.get("/events")
def events():
    response = Response(lines(), mimetype="application/x-ndjson")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


@app.get("/plain")
def plain():
    return Response(lines(), mimetype="text/plain", headers={"Cache-Control": "no-cache"})
