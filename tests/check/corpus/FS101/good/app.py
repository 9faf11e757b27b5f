"""The same streams, kept inside the request context (or reading nothing from it)."""

from flask import (
    Flask,
    Response,
    render_template,
    request,
    stream_template,
    stream_with_context,
    url_for,
)
from flask_login import current_user

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


@app.get("/direct")
@stream_with_context
def direct():
    # The view is the generator, wrapped: the request context stays while it runs.
    yield "q=" + request.args.get("q", "")


@app.get("/page")
def page_parts():
    @stream_with_context
    def generate():
        yield render_template("header.html")
        yield url_for("direct")

    return Response(generate(), mimetype="text/html")


@app.get("/mine")
def mine():
    name = current_user.name

    def generate():
        yield f"hello {name}\n"

    return Response(generate(), mimetype="text/plain")


@app.get("/count")
def count():
    # A generator view that uses nothing of the request.
    yield from ("1\n", "2\n")
