"""The generated app, tagging each response with the pid of the worker that serves it.

``gunicorn ... channel_app:create_app()`` with this directory on ``PYTHONPATH`` and
``CHANNEL_APP_PACKAGE`` naming the generated package. The ``X-Worker-Pid`` header lets the
tests spread subscribers over every worker; nothing else is changed.
"""

from __future__ import annotations

import importlib
import os

from flask import Flask, Response


def create_app() -> Flask:
    package = importlib.import_module(os.environ["CHANNEL_APP_PACKAGE"])
    app: Flask = package.create_app()

    @app.after_request
    def tag(response: Response) -> Response:
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response

    return app
