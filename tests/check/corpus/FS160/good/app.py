"""The same streams, each waiting at most a heartbeat interval and writing a comment then."""

import queue

import redis
from flask import Flask, Response, request, stream_with_context

from .announcer import announcer

app = Flask(__name__)
client = redis.Redis()
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
HEARTBEAT = ": keep-alive\n\n"


def sse(data):
    return f"data: {data}\n\n"


@app.get("/listen")
def listen():
    def stream():
        messages = announcer.listen()
        while True:
            try:
                # The timeout given by position; docs/check.md's example gives it by name.
                yield sse(messages.get(True, 15))
            except queue.Empty:
                yield HEARTBEAT

    return Response(stream(), mimetype="text/event-stream", headers=HEADERS)


@app.get("/polling")
def polling():
    def stream():
        messages = queue.Queue()
        while True:
            if not messages.empty():
                yield sse(messages.get())
            else:
                yield HEARTBEAT

    return Response(stream(), mimetype="text/event-stream", headers=HEADERS)


@app.get("/pubsub")
def pubsub():
    @stream_with_context
    def generate():
        channel = client.pubsub()
        channel.subscribe(request.args.get("topic", "news"))
        while True:
            message = channel.get_message(ignore_subscribe_messages=True, timeout=15)
            yield sse(message["data"]) if message else HEARTBEAT

    return Response(generate(), mimetype="text/event-stream", headers=HEADERS)


@app.get("/options")
def options():
    # Other objects' get(): a mapping's, with a key.
    def stream():
        settings = dict(interval=1)
        yield sse(settings.get("interval"))

    return Response(stream(), mimetype="text/event-stream", headers=HEADERS)
