"""Framing headers set by hand on streamed responses."""

from flask import Flask, Response

app = Flask(__name__)


def lines():
    yield "a\n"


@app.get("/a")
def keep_alive():
    return Response(lines(), mimetype="text/plain", headers={"Connection": "keep-alive"})


@app.get("/b")
def framed():
    response = Response(lines(), mimetype="text/plain")
    response.headers["Content-Length"] = "100"
    response.headers.set("Transfer-Encoding", "chunked")
    return response
