"""The generator function is called in the view, where the request context is captured."""

from flask import Flask, Response, request, stream_with_context

app = Flask(__name__)


@app.get("/events")
def events():
    def generate():
        yield request.args.get("q", "")

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.get("/decorated")
def decorated():
    @stream_with_context
    def generate():
        yield request.path

    return Response(generate(), mimetype="text/plain")
