"""stream_with_context where there is no request to keep."""

from threading import Thread

from flask import Flask, request, stream_with_context

app = Flask(__name__)


@stream_with_context
def generate():
    yield request.path


STREAM = generate()


def warm_up():
    for chunk in stream_with_context(iter(["a"])):
        print(chunk)


Thread(target=warm_up).start()


@app.cli.command("dump")
def dump():
    for chunk in generate():
        print(chunk)
