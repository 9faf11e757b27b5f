"""Health checks for load balancers and Kubernetes probes: ``/healthz`` and ``/readyz``.

``GET /healthz`` says that the process answers (a liveness probe: restart it when it does
not). ``GET /readyz`` says whether it should be sent new streams (a readiness probe): not
while it is shutting down, nor while a check added with `add_check` fails (channels add
theirs: the broker answers, and the reader keeps up). During a restart the readiness check
therefore fails first, before the streams end with their reconnection hints, so that a
load balancer sends the reconnections elsewhere.

Both are cheap (no session, no template) and left out of gunicorn's access log
(deploy/gunicorn.conf.py): a probe every few seconds would drown everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from flask import Blueprint, Flask, Response, abort, current_app, jsonify

from .streaming import shutting_down

# The paths of the probes; deploy/gunicorn.conf.py leaves them out of the access log.
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
PATHS = (LIVENESS_PATH, READINESS_PATH)

# A readiness check returns None when all is well, else what is wrong, in a few words.
Check = Callable[[], str | None]

bp = Blueprint("health", __name__)


def init_app(app: Flask) -> None:
    """Serve the probes on *app*; checks are added with `add_check`."""
    app.extensions["readiness_checks"] = []
    app.register_blueprint(bp)


def add_check(app: Flask, check: Check) -> None:
    """Make ``/readyz`` answer 503 while *check* returns a problem.

    A check runs on every probe: keep it to one cheap round trip (a ping), with a timeout.
    """
    checks: list[Check] = app.extensions["readiness_checks"]
    checks.append(check)


@bp.get(LIVENESS_PATH)
def healthz() -> Response:
    """``200 {"status": "ok"}``: the process answers."""
    return _answer({"status": "ok"})


@bp.get(READINESS_PATH)
def readyz() -> Response:
    """``200 {"status": "ready"}``, or ``503 {"error": "not ready: ..."}`` saying why."""
    if shutting_down.is_set():
        _unready("the server is shutting down")
    checks: list[Check] = current_app.extensions["readiness_checks"]
    for check in checks:
        problem = check()
        if problem is not None:
            _unready(problem)
    return _answer({"status": "ready"})


def _answer(body: dict[str, str]) -> Response:
    response = jsonify(body)
    # A probe's answer is about this moment: nothing on the way may keep it.
    response.headers["Cache-Control"] = "no-store"
    return response


def _unready(problem: str) -> NoReturn:
    abort(503, description=f"not ready: {problem}")
