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

Cluster: three shards, one restarted empty mid-stream; topics spread over them.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from .chaos import ChaosConfig, run
from .redis_stack import redis_binary, sentinel_binary
from .stack import Project

pytestmark = [
    pytest.mark.deploy,
    pytest.mark.skipif(redis_binary() is None, reason="apt-get install redis-server"),
]

# With this seed the primary is killed 2.7 s into the run; once the old primary is back as
# a replica, the Sentinels switch the primary; nothing more happens until the end.
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
