"""The decorated generator is called in the view only."""

from flask import Flask, Response, request, stream_with_context

app = Flask(__name__)


@stream_with_context
def generate():
    yield request.path


@app.get("/path")
def path():
    return Response(generate(), mimetype="text/plain")


@app.cli.command("dump")
def dump():
    with app.test_request_context("/path"):
        print(request.path)
