"""A short fault-injection run of the channels on the real stack (see ``chaos.py``).

Publishers at full speed on six topics with a history of 40, thirty subscribers dropping and
resuming (some at the trim edge, some slow), gunicorn gthread and gevent, and every kind of
fault within the run. The checker must find every event in order, none twice, and a reset
before every discontinuity. The negative control runs the same mix against a resume that
checks the history and reads it in two steps: the checker must catch the gaps. The long run
is ``python -m bench.chaos``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.chaos import FAULTS, ChaosConfig, run
from harness.redis_stack import redis_binary
from harness.stack import Project

pytestmark = [
    pytest.mark.deploy,
    pytest.mark.skipif(redis_binary() is None, reason="apt-get install redis-server"),
]

# With this seed, the faults of the first 12 s are of every kind: a HUP, a FLUSHALL, a
# failover, a worker kill, a HUP and a restart from a snapshot.
SHORT = ChaosConfig(seconds=15, seed=11, fault_every=2.5)


def test_every_subscriber_gets_every_event_once_in_order_or_a_reset(
    chaos_projects: dict[str, Project], tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    report = run(SHORT, tmp_path, chaos_projects)
    record_property("chaos", report.summary())
    assert report.ok, report.summary()
    assert set(report.faults) == set(FAULTS), report.summary()
    assert report.deliveries > 10_000, report.summary()
    assert report.resets > 0
    assert report.edge_resumes > 0


def test_the_checker_catches_a_resume_that_checks_and_reads_in_two_steps(
    chaos_projects: dict[str, Project], tmp_path: Path
) -> None:
    # Every resume reads the log (most would be served from the workers' memory otherwise).
    control = ChaosConfig(
        seconds=8, seed=SHORT.seed, faults=(), two_step_read=True, merge_reads=False
    )
    report = run(control, tmp_path, chaos_projects)
    assert report.gaps > 0, report.summary()
