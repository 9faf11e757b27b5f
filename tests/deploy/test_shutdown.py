"""A restart under open streams: streams end at once with a retry hint, clients resume exactly.

gunicorn is sent HUP while EventSource-like clients read ``/events``: it starts new workers and
stops the old ones with SIGTERM. The generated SIGTERM hook (deploy/gunicorn.conf.py) ends
every open stream with ``retry:``; the clients reconnect with ``Last-Event-ID`` and the new
workers resume after it. Negative controls: the same restart without the hook, where the old
worker keeps its streams going past graceful_timeout, and a client that ignores ids, which
then receives events twice.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import pytest

from harness.client import EventSourceClient
from harness.stack import Process, restart_gracefully

from .conftest import SERVERS, Servers

pytestmark = pytest.mark.deploy

COUNT = 45
INTERVAL = 0.1
CLIENTS = 12
RETRY_MS = 200
GRACEFUL_TIMEOUT = 3


@dataclass
class Restart:
    clients: list[EventSourceClient]
    ignoring: EventSourceClient
    old_workers_gone_after: float
    log: str


def restart_under_streams(app: Process, count: int = COUNT) -> Restart:
    path = f"/events?count={count}&interval={INTERVAL}"
    clients = [EventSourceClient(app.port, path) for _ in range(CLIENTS)]
    ignoring = EventSourceClient(app.port, path, send_last_event_id=False)
    threads = [threading.Thread(target=c.run, daemon=True) for c in [*clients, ignoring]]
    for thread in threads:
        thread.start()
    # Restart once every client is in the middle of its stream.
    deadline = time.monotonic() + 20
    while min(len(c.ids) for c in [*clients, ignoring]) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    gone_after = restart_gracefully(app, timeout=GRACEFUL_TIMEOUT + 10)
    for thread in threads:
        thread.join(timeout=60)
    return Restart(clients, ignoring, gone_after, app.log())


def without_the_hook(servers: Servers, server: str) -> str:
    """A copy of the generated gunicorn.conf.py whose SIGTERM hook is left out."""
    conf = servers.project(server).gunicorn_conf
    text, n = re.subn(
        r"\n    signal\.signal\(signal\.SIGTERM, handle_exit\)\n", "\n", conf.read_text()
    )
    assert n == 1, "the generated gunicorn.conf.py no longer installs its SIGTERM hook"
    copy = conf.with_name("gunicorn-without-hook.conf.py")
    copy.write_text(text)
    return str(copy)


def serve(servers: Servers, server: str, name: str, *extra: str) -> Process:
    return servers.gunicorn(
        server,
        name,
        env={"FLASK_STREAM_RETRY_MS": str(RETRY_MS)},
        extra_args=["--workers", "2", "--graceful-timeout", str(GRACEFUL_TIMEOUT), *extra],
    )


@pytest.mark.parametrize("server", SERVERS)
def test_a_restart_ends_streams_at_once_and_clients_resume_without_loss_or_duplicates(
    servers: Servers, server: str, record_property: pytest.RecordProperty
) -> None:
    app = serve(servers, server, f"gunicorn-{server}-restart")
    restart = restart_under_streams(app)

    for client in restart.clients:
        assert client.error is None, client.error
        assert client.finished
        # Nothing lost, nothing twice, in order, across the restart.
        assert client.ids == list(range(COUNT))
        assert client.connections >= 2
        # Under gevent an old worker accepts for up to a second after SIGTERM: a client that
        # lands there again is sent straight back with another hint.
        assert client.hints
        assert set(client.hints) == {": server restarting: reconnect"}
    # Every stream of the old workers ended with the hint, none was cut by the timeout (a cut
    # stream gets none: see the negative control). How soon the old workers left is a figure,
    # not an assertion: on a loaded machine a gevent worker's one-second polls add up.
    assert "Worker graceful timeout" not in restart.log
    # Negative control: without Last-Event-ID the stream starts over, and events come twice.
    assert restart.ignoring.finished
    assert len(restart.ignoring.ids) > len(set(restart.ignoring.ids))
    record_property("old_workers_gone_after_seconds", round(restart.old_workers_gone_after, 3))
    record_property("reconnections", sum(c.connections - 1 for c in restart.clients))


def test_without_the_hook_the_old_worker_holds_its_streams_until_it_is_killed(
    servers: Servers, record_property: pytest.RecordProperty
) -> None:
    app = serve(
        servers,
        "gthread",
        "gunicorn-gthread-restart-no-hook",
        "--config",
        without_the_hook(servers, "gthread"),
    )
    # Streams 7 s long, so that they outlast the graceful timeout after the HUP.
    restart = restart_under_streams(app, count=70)

    # The old worker kept its streams going past graceful_timeout (after a HUP, gunicorn
    # neither cuts them nor kills the worker before its own timeout), and no client was told
    # to come back: the deploy waits for the slowest stream.
    assert all(client.hints == [] for client in restart.clients)
    assert restart.old_workers_gone_after >= GRACEFUL_TIMEOUT
    assert all(client.ids == list(range(70)) for client in restart.clients)
    record_property("old_workers_gone_after_seconds", round(restart.old_workers_gone_after, 3))
