"""The server frames the stream; a whole body may carry its length."""

from flask import Flask, Response

app = Flask(__name__)


def lines():
    yield "a\n"


@app.get("/a")
def stream():
    return Response(lines(), mimetype="text/plain", headers={"Cache-Control": "no-cache"})


@app.get("/b")
def whole():
    return Response("ok", headers={"Content-Length": "2"})
