"""Streams that wait on a queue, or on Redis pub/sub, for as long as nothing comes."""

import queue

import redis
from flask import Flask, Response, stream_with_context
from gevent.queue import Queue

from .announcer import announcer

app = Flask(__name__)
client = redis.Redis()
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
shared = queue.SimpleQueue()


def sse(data):
    return f"data: {data}\n\n"


@app.get("/listen")
def listen():
    def stream():
        messages = announcer.listen()  # a queue.Queue of this client's own
        while True:
            yield messages.get()

    return Response(stream(), mimetype="text/event-stream", headers=HEADERS)


@app.get("/scores")
def scores():
    def generate():
        updates = Queue()
        while True:
            yield sse(updates.get(True))
            yield sse(shared.get(block=True))  # a queue of the module's

    return Response(generate(), mimetype="text/event-stream", headers=HEADERS)


@app.get("/pubsub")
def pubsub():
    @stream_with_context
    def generate():
        channel = client.pubsub()
        channel.subscribe("news")
        for message in channel.listen():
            if message["type"] == "message":
                yield sse(message["data"])

    return Response(generate(), mimetype="text/event-stream", headers=HEADERS)
