"""The fan-out peer: flask-sse 1.0 (Redis pub/sub), with a publish route like the generated one.

``gunicorn -k gevent bench.apps.flask_sse_app:app`` with ``REDIS_URL`` set. Subscribers
``GET /stream?channel=T``; ``POST /publish/T`` publishes its body as the event data.
"""

from __future__ import annotations

import os

from flask import Flask, request
from flask_sse import sse

app = Flask(__name__)
app.config["REDIS_URL"] = os.environ["REDIS_URL"]
app.register_blueprint(sse, url_prefix="/stream")


@app.post("/publish/<topic>")
def publish(topic: str) -> tuple[dict[str, str], int]:
    sse.publish(request.get_data(as_text=True), channel=topic)
    return {"ok": "1"}, 201
