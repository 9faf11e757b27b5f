"""``python -m bench.chaos --minutes N [--seed S]``: channels under faults, every delivery checked.

A seeded, time-bounded run of ``harness/chaos.py`` against real redis-server processes
(a primary and its replica) and real gunicorn (gthread and gevent, two workers each) serving
a rendered channel project: publishers at full speed on several topics with a small history,
subscribers on 1 to 3 topics that drop at random moments and resume by ``Last-Event-ID``
(some exactly at the trim edge, some reading slowly), and faults: Redis restarted from a
snapshot, ``FLUSHALL``, a failover to a replica that missed the last writes, a worker
killed, a gunicorn HUP. ``--topology sentinel`` runs on a Sentinel group whose primary is
killed (``--publish-replicas 1``: durable publishing), ``--topology cluster`` on a
three-shard Redis Cluster whose shards are restarted empty. The checker prints the
deliveries checked, the resets, the gaps and duplicates (both must be 0) and the seed; on a
failure, the smallest history that shows it.
The exit status is 0 only when every promise held.

Negative controls: ``--two-step-read`` checks each page of history and reads it in two
round trips; ``--template REF`` renders the template of a git ref (e.g. one from before the
resume became atomic) instead of the working tree. Both must report gaps.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.chaos import TOPOLOGY_FAULTS, ChaosConfig, run

from .common import raise_open_files, scratch, snapshot_template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, help="default: a new one, printed")
    parser.add_argument("--subscribers", type=int, default=ChaosConfig.subscribers)
    parser.add_argument("--publishers", type=int, default=ChaosConfig.publishers)
    parser.add_argument("--topics", type=int, default=ChaosConfig.topics)
    parser.add_argument("--history", type=int, default=ChaosConfig.history)
    parser.add_argument(
        "--fault-every", type=float, default=ChaosConfig.fault_every, help="seconds, on average"
    )
    parser.add_argument(
        "--topology",
        choices=sorted(TOPOLOGY_FAULTS),
        default="pair",
        help="Redis: a primary and its replica, a Sentinel group, or a three-shard cluster",
    )
    parser.add_argument(
        "--faults", help="a comma-separated subset of the topology's (default: all of them)"
    )
    parser.add_argument(
        "--publish-replicas", type=int, default=0, help="durable publishing: WAIT for this many"
    )
    parser.add_argument(
        "--two-step-read",
        action="store_true",
        help="the non-atomic control (with --no-merge-reads, so that every resume reads the log)",
    )
    parser.add_argument(
        "--no-merge-reads",
        action="store_true",
        help="every stream reads its own history (FLASK_STREAM_MERGE_READS=false)",
    )
    parser.add_argument("--template", metavar="REF", help="render this git ref's template")
    args = parser.parse_args(argv)
    known = TOPOLOGY_FAULTS[args.topology]
    faults = tuple(n.strip() for n in (args.faults or ",".join(known)).split(",") if n.strip())
    if unknown := set(faults) - set(known):
        parser.error(f"unknown faults {sorted(unknown)}; choose from {', '.join(known)}")
    seed = args.seed if args.seed is not None else time.time_ns() % 10**6
    raise_open_files()
    with scratch("bench-chaos-") as tmp:
        config = ChaosConfig(
            seconds=args.minutes * 60,
            seed=seed,
            topics=args.topics,
            publishers=args.publishers,
            subscribers=args.subscribers,
            history=args.history,
            fault_every=args.fault_every,
            faults=faults,
            two_step_read=args.two_step_read,
            topology=args.topology,
            publish_replicas=args.publish_replicas,
            merge_reads=not args.no_merge_reads,
            template=snapshot_template(Path(tmp) / "template", source=args.template)
            if args.template
            else ChaosConfig.template,
        )
        print(f"seed {seed}: running for {args.minutes:g} minutes", flush=True)
        report = run(config, Path(tmp) / "run")
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
