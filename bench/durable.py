"""``python -m bench.durable [--publishes N] [--runs R]``: what durable publishing costs.

The generated app's Redis broker publishes *N* events of 100 bytes one after another by
function, on a primary with one replica on this machine, without and with
``publish_replicas=1`` (``WAIT 1`` after each publish script, on the same connection), in
*R* alternating runs of each. It prints the wall time and the publisher's CPU time per
publish, and the load average before and after: the difference is WAIT's cost, which grows
by a network round trip when the replica is on another machine.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from harness.redis_stack import RedisPair

from .common import scratch
from .fanout import render


def publish_cost(url: str, package: str, replicas: int, publishes: int) -> tuple[float, float]:
    """Microseconds of wall time and of this process's CPU per publish, with *replicas*."""
    brokers = importlib.import_module(f"{package}.brokers")
    broker = brokers.open_broker(
        url,
        history=1000,
        queue_size=10,
        block_seconds=1,
        tick_seconds=1,
        retry_seconds=5,
        replay_limit=10,
        publish_replicas=replicas,
    )
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(publishes):
            broker.publish("durable", "x" * 100)
        return (
            (time.perf_counter() - wall) / publishes * 1e6,
            (time.process_time() - cpu) / publishes * 1e6,
        )
    finally:
        broker.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.durable", description=__doc__)
    parser.add_argument("--publishes", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=4, help="of each, in alternation")
    args = parser.parse_args(argv)
    with scratch("bench-durable-") as tmp:
        project = render(Path(tmp))
        sys.path.insert(0, str(project.root / "src"))
        pair = RedisPair(Path(tmp) / "redis")
        pair.start()
        try:
            print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            for _ in range(args.runs):
                for replicas in (0, 1):
                    wall, cpu = publish_cost(pair.url, project.package, replicas, args.publishes)
                    print(
                        f"publish_replicas={replicas}: {wall:.0f} µs wall, "
                        f"{cpu:.0f} µs publisher CPU per publish"
                    )
            print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        finally:
            pair.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
