"""The same streams, kept inside the request context (or reading nothing from it)."""

from flask import Flask, Response, request, stream_template, stream_with_context

app = Flask(__name__)


@app.get("/decorator")
def decorator_style():
    @stream_with_context
    def generate():
        yield request.args.get("q", "")

    return Response(generate(), mimetype="text/plain")


@app.get("/wrapper")
def wrapper_style():
    def generate():
        yield request.args.get("q", "")

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.get("/read-first")
def read_first():
    query = request.args.get("q", "")

    def generate():
        yield query

    return Response(generate(), mimetype="text/plain")


@app.get("/plain")
def plain():
    def generate():
        yield from ("a\n", "b\n")

    return generate()


@app.get("/template")
def template():
    # stream_template wraps its generator with stream_with_context itself.
    return stream_template("page.html")
