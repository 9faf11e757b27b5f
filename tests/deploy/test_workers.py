"""The documented ``gunicorn -c deploy/gunicorn.conf.py`` on a project whose first endpoint is
a channel: it starts with the embedded broker, on one worker, and says so; with Redis it runs
several workers. (``--workers 2`` on top of the embedded broker is refused: test_channels.py.)
"""

from __future__ import annotations

import time

import pytest

from harness.redis_stack import RedisServer
from harness.stack import Process, Project, render_project, start_gunicorn, stop

from .conftest import Servers, requires_redis

pytestmark = pytest.mark.deploy

ONE_WORKER = "One worker: FLASK_STREAM_BROKER_URL is 'memory://'"
CHANNEL_FIRST = (
    {
        "name": "orders",
        "path": "/orders",
        "style": "decorator",
        "format": "sse",
        "session": False,
        "source": "channel",
    },
    {"name": "ticks", "path": "/ticks", "style": "wrapper", "format": "ndjson", "session": False},
)


@pytest.fixture(scope="module")
def project(servers: Servers) -> Project:
    return render_project(servers.root / "channel-first", endpoints=CHANNEL_FIRST)


def wait_for_workers(app: Process, count: int, timeout: float = 20.0) -> list[int]:
    """The master's workers once there are *count* of them (bounded)."""
    deadline = time.monotonic() + timeout
    while len(workers := app.children()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return workers


def test_the_embedded_broker_runs_one_worker_and_says_so(
    servers: Servers, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing set but the secret key, as in the README.
    monkeypatch.delenv("FLASK_STREAM_BROKER_URL", raising=False)
    app = start_gunicorn(project, log_path=servers.root / "channel-first-memory.log")
    try:
        assert ONE_WORKER in app.log()
        # gunicorn forks every worker before the first one has loaded the app and answers.
        assert len(app.children()) == 1
    finally:
        stop(app)


@requires_redis
def test_a_redis_broker_runs_more_workers(
    servers: Servers, project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    redis = RedisServer(tmp_path_factory.mktemp("workers-redis"))
    redis.start()
    try:
        app = start_gunicorn(
            project,
            log_path=servers.root / "channel-first-redis.log",
            env={"FLASK_STREAM_BROKER_URL": redis.url},
        )
        try:
            assert len(wait_for_workers(app, 2)) == 2
            assert "One worker" not in app.log()
        finally:
            stop(app)
    finally:
        redis.stop()
