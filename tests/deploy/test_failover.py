"""Channels on a Redis that fails over (Sentinel) or spreads over shards (Cluster).

Each test is a fault-injection run (``chaos.py``) on real processes: two gunicorn hosts
(gthread and gevent, two workers each) serving the generated channel project, publishers at
full speed, subscribers dropping and resuming, and the checker of the promise: every event
in order and once, or a reset before any discontinuity; no error answer; no host that stops
answering.

Sentinel: a primary, its replica and three Sentinels. The primary is killed once (after its
replica was cut off for a moment, so that the failover loses the writes of that moment);
the Sentinels promote the replica, and publishing and delivery must resume without a
restart. Then the Sentinels are made to switch the primary while it lives on (``SENTINEL
FAILOVER``): the old primary takes writes until it is demoted, and the app must leave it
at once. With durable publishing (``STREAM_PUBLISH_REPLICAS=1``) no acknowledged event is
lost; without it (the control) the acknowledged events of those moments are, and the
checker shows that every client was told (a reset), never skipped.

A switch-over on its own, with the old primary left to the Sentinels, who demote it only
seconds later: the app must write to the new primary before then, and (the control) does
not when it does not listen for the Sentinels' announcement of the new one.

Cluster: three shards, one restarted empty mid-stream; topics spread over them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.chaos import ChaosConfig, run
from harness.redis_stack import RedisServer, SentinelGroup, redis_binary, sentinel_binary
from harness.stack import REPO_ROOT, Project

pytestmark = [
    pytest.mark.deploy,
    pytest.mark.skipif(redis_binary() is None, reason="apt-get install redis-server"),
]

# With this seed the primary is killed 2.7 s into the run; once the old primary is back as
# a replica, the Sentinels switch the primary (on a loaded machine, as late as the end of
# the 14 s); the run goes on for `settle_seconds` after that, so the last epoch has
# deliveries to check.
SENTINEL = ChaosConfig(
    seconds=14,
    seed=225,
    fault_every=4,
    topology="sentinel",
    faults=("sentinel failover", "sentinel switchover"),
    # Nothing is trimmed within the run: every acknowledged event must still be in the logs.
    history=100_000,
)


@pytest.mark.skipif(sentinel_binary() is None, reason="apt-get install redis-sentinel")
@pytest.mark.parametrize("durable", [True, False], ids=["durable publishing", "without (control)"])
def test_a_sentinel_failover_is_followed_and_loses_no_acknowledged_event(
    chaos_projects: dict[str, Project],
    tmp_path: Path,
    record_property: pytest.RecordProperty,
    durable: bool,
) -> None:
    config = dataclasses.replace(SENTINEL, publish_replicas=1 if durable else 0)
    report = run(config, tmp_path, chaos_projects)
    record_property("failover", report.summary())
    assert report.ok, report.summary()
    assert dict(report.faults) == {"sentinel failover": 1, "sentinel switchover": 1}, (
        report.summary()
    )
    # Publishing came back without a restart, and the readers followed the new primary.
    assert all(math.isfinite(seconds) for seconds in report.failovers), report.summary()
    assert report.last_epoch_deliveries > 1000, report.summary()
    # A failover is a new epoch: every client of the old one was told.
    assert report.resets > 0, report.summary()
    if durable:
        assert report.lost_acknowledged == 0, report.summary()
    else:
        assert report.lost_acknowledged > 0, report.summary()


# With this seed a shard is restarted (empty) 2.4 s and 4.8 s into the run.
CLUSTER = ChaosConfig(
    seconds=9, seed=74, fault_every=4, topology="cluster", faults=("shard restart",)
)


def test_a_cluster_spreads_topics_and_survives_a_shard_restarted_mid_stream(
    chaos_projects: dict[str, Project], tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    report = run(CLUSTER, tmp_path, chaos_projects)
    record_property("cluster", report.summary())
    assert report.ok, report.summary()
    assert dict(report.faults) == {"shard restart": 2}, report.summary()
    # The restarted shards lost their logs: their clients were told, and delivery went on.
    assert report.resets > 0, report.summary()
    assert report.last_epoch_deliveries > 1000, report.summary()


# Publishes each line of its input as an event of topic "switch" and answers "ok", or the
# error; with "off", the process does not listen for the Sentinels' announcements.
PUBLISHER = """
import importlib, sys
package, url, watch = sys.argv[1:]
if watch == "off":
    importlib.import_module(package + ".brokers._topology").SwitchWatch.start = lambda self: None
broker = importlib.import_module(package + ".brokers").open_broker(
    url, history=100, queue_size=10, block_seconds=1, tick_seconds=1, retry_seconds=5,
    replay_limit=10,
)
for line in sys.stdin:
    try:
        broker.publish("switch", line.strip())
        print("ok", flush=True)
    except Exception as error:
        print(type(error).__name__, flush=True)
"""


def holds(server: RedisServer, token: str) -> bool:
    """Whether *server*'s log of topic "switch" has the event *token*."""
    with contextlib.closing(server.client()) as client:
        entries = client.xrange("channel:switch")
    return any(fields.get("data") == token for _, fields in entries)


def is_primary(server: RedisServer) -> bool:
    with contextlib.closing(server.client()) as client:
        return client.info("replication").get("role") == "master"


@pytest.mark.skipif(sentinel_binary() is None, reason="apt-get install redis-sentinel")
@pytest.mark.parametrize("watch", ["on", "off"], ids=["as built", "not listening (control)"])
def test_a_switch_over_is_left_before_the_sentinels_demote_the_old_primary(
    chaos_projects: dict[str, Project], tmp_path: Path, watch: str
) -> None:
    project = chaos_projects["gthread"]
    group = SentinelGroup(tmp_path)
    group.start()
    publisher = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, project.package, group.url, watch],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(project.root / "src")},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert publisher.stdin is not None and publisher.stdout is not None

    def publish(token: str) -> str:
        assert publisher.stdin is not None and publisher.stdout is not None
        publisher.stdin.write(token + "\n")
        publisher.stdin.flush()
        return publisher.stdout.readline().strip()

    try:
        old = group.primary
        assert publish("before") == "ok"
        group.switch_over(demote=False)
        new = group.primary
        # The Sentinels demote a primary that lives on at their next look at it, seconds
        # later: until then, whatever this app writes to it is lost.
        deadline = time.monotonic() + 5
        n = 0
        while not holds(new, f"after-{n}") and time.monotonic() < deadline:
            n += 1
            publish(f"after-{n}")
            time.sleep(0.05)
        reached_new = holds(new, f"after-{n}")
        old_still_primary = is_primary(old)
        landed_on_old = holds(old, "after-1")
    finally:
        publisher.stdin.close()
        publisher.wait(timeout=10)
        group.stop()
    assert old_still_primary, "the Sentinels demoted the old primary first: nothing shown"
    if watch == "on":
        assert reached_new, "no event reached the new primary within 5 s"
    else:
        # The control: the old primary, still taking writes, got this app's events.
        assert landed_on_old and not reached_new
