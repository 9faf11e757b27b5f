"""The generated app as the fault-injection runs serve it, optionally with a broken resume.

``gunicorn ... harness.chaos_app:create_app()`` with the repository on ``PYTHONPATH`` and
``CHANNEL_APP_PACKAGE`` naming the generated package. With ``CHAOS_TWO_STEP_READ=1`` the
Redis broker checks each page of history in one round trip and reads it in another, as
channels did before their resume became one atomic step: the negative control, which the
checker must catch. Nothing else is changed.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app() -> Flask:
    package = importlib.import_module(os.environ["CHANNEL_APP_PACKAGE"])
    if os.environ.get("CHAOS_TWO_STEP_READ") == "1":
        break_atomic_read(package.__name__)
    app: Flask = package.create_app()
    return app


def break_atomic_read(package: str) -> None:
    """Split the Redis broker's atomic read of a page into a check and a later read."""
    redis_broker = importlib.import_module(f"{package}.brokers._redis").RedisBroker
    log_read = importlib.import_module(f"{package}.brokers._base").LogRead
    read = redis_broker._read

    def check_then_read(self: object, start: Mapping[str, Any], size: int) -> dict[str, Any]:
        checked = read(self, start, size)
        # As long as a second round trip takes on a busy server.
        time.sleep(0.002)
        later = read(self, start, size)
        return {
            topic: log_read(
                log.epoch,
                log.last,
                log.trimmed,
                log.earlier,
                # The position's entry, if the check found it, then whatever the log holds
                # after it by now.
                [e for e in log.entries[:1] if e.position.entry == start[topic].entry]
                + [e for e in later[topic].entries if e.position.entry > start[topic].entry],
            )
            for topic, log in checked.items()
        }

    redis_broker._read = check_then_read
