"""The generated app plus a test-only probe blueprint, served by gunicorn in deployment tests.

``gunicorn ... probe_app:create_app()`` with this directory on ``PYTHONPATH`` and:

* ``STREAM_PROBE_PACKAGE``: the generated project's import package (its ``create_app()``,
  ``sse`` and ``streaming`` modules are used as they are);
* ``STREAM_PROBE_DIR``: a directory where the test confirms what it has received.

``GET /probe/<format>?token=T&count=N&wait=S&accel=1`` streams N records in *format*
(sse, ndjson or text). After each record but the last it waits, at most S seconds, for the
test to create the file ``<STREAM_PROBE_DIR>/T.<seq>``, i.e. to confirm that this very record
has reached the client; only then does it produce the next one. A final record says
``"confirmed"`` or, when a wait ran out, ``"unconfirmed"``. A stack that buffers anywhere
holds the first record back, the test can never confirm it, and the stream ends
``"unconfirmed"``: the check is lock-step, not timed. Clients sharing a token wait for the
same files, which makes a barrier for concurrency tests. ``accel=0`` removes the app's
``X-Accel-Buffering: no`` header.

``GET /probe/endless/<format>`` streams numbered events 0.1 s apart through the generated
``streaming.event_stream`` and never ends by itself: only the app's limits (the lifetime cap,
a shutdown) end it.
"""

from __future__ import annotations

import importlib
import itertools
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, request


class Confirmations:
    """Waits for confirmation files; one polling thread (a greenlet under gevent) per process."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}
        self._poller: threading.Thread | None = None

    def wait(self, name: str, timeout: float) -> bool:
        with self._lock:
            event = self._events.setdefault(name, threading.Event())
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll, daemon=True)
                self._poller.start()
        return event.wait(timeout)

    def _poll(self) -> None:
        while True:
            with self._lock:
                pending = [(n, e) for n, e in self._events.items() if not e.is_set()]
            for name, event in pending:
                if (self._directory / name).exists():
                    event.set()
            time.sleep(0.005)


def create_app() -> Flask:
    package = os.environ["STREAM_PROBE_PACKAGE"]
    generated: Any = importlib.import_module(package)
    app: Flask = generated.create_app()
    sse = importlib.import_module(f"{package}.sse")
    streaming = importlib.import_module(f"{package}.streaming")
    confirmations = Confirmations(Path(os.environ["STREAM_PROBE_DIR"]))
    probe = Blueprint("probe", __name__)

    def frame(fmt: str, record: dict[str, Any]) -> str:
        if fmt == "sse":
            seq = record.get("seq")
            return str(sse.format_json_event(record, id=None if seq is None else str(seq)))
        if fmt == "ndjson":
            return str(streaming.ndjson_line(record))
        return str(streaming.text_line(" ".join(f"{k}={v}" for k, v in record.items())))

    @probe.get("/probe/<fmt>")
    def stream(fmt: str) -> Response:
        if fmt not in ("sse", "ndjson", "text"):
            abort(404)
        token = request.args["token"]
        count = int(request.args.get("count", "3"))
        wait = float(request.args.get("wait", "10"))

        def generate() -> Iterator[str]:
            status = "confirmed"
            for seq in range(count):
                yield frame(fmt, {"seq": seq, "pid": os.getpid()})
                if seq < count - 1 and not confirmations.wait(f"{token}.{seq}", wait):
                    status = "unconfirmed"
                    break
            yield frame(fmt, {"status": status})

        response: Response = streaming.stream_response(generate(), fmt)
        if request.args.get("accel", "1") == "0":
            del response.headers["X-Accel-Buffering"]
        return response

    @probe.get("/probe/endless/<fmt>")
    def endless(fmt: str) -> Response:
        if fmt not in ("sse", "ndjson", "text"):
            abort(404)

        def events() -> Iterator[Any]:
            for seq in itertools.count():
                if seq:
                    yield streaming.Pause(0.1)
                yield streaming.Event({"seq": seq} if fmt != "text" else f"seq={seq}", id=str(seq))

        response: Response = streaming.event_stream(events(), fmt)
        return response

    app.register_blueprint(probe)
    return app
