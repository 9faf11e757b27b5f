"""``python -m bench``: measure the scaffolder and the generated app, print a report.

Examples::

    python -m bench --quick                      # a taste, under a minute
    python -m bench                              # everything, default sizes
    python -m bench --parts concurrency --sizes 100,1000,5000,10000
    python -m bench --json results.json --plot docs/benchmarks-latency.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PARTS = ("scaffold", "first-event", "one-stream", "proxies", "in-process", "concurrency")
PROXIES = ("nginx", "caddy", "apache")
APPS = ("generated/gevent", "bare Flask/gevent", "sse-starlette/uvicorn")
OPTIONAL_APPS = ("generated/gthread",)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated parts to run (default all): {', '.join(PARTS)}",
    )
    p.add_argument(
        "--quick", action="store_true", help="small sizes and few runs: finishes in about a minute"
    )
    p.add_argument("--runs", type=int, default=5, help="scaffolder: runs per command (median)")
    p.add_argument(
        "--endpoint-counts",
        default="1,10,50",
        help="scaffolder: endpoint counts for the scaling table",
    )
    p.add_argument(
        "--template-from",
        choices=("worktree", "head"),
        default="worktree",
        help="scaffolder: snapshot the template from the work tree or from HEAD",
    )
    p.add_argument("--samples", type=int, default=300, help="first-event: samples per server")
    p.add_argument(
        "--requests", type=int, default=60, help="one-stream: requests of 1000 events per round"
    )
    p.add_argument("--rounds", type=int, default=3, help="one-stream: rounds (median)")
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="REF",
        help="one-stream: also measure the generated app (gevent) rendered from git REF, e.g. "
        "the commit before a change, to see what the change costs per event (repeatable)",
    )
    p.add_argument(
        "--sizes",
        default="100,1000,5000",
        help="concurrency: numbers of concurrent streams (10000 is optional)",
    )
    p.add_argument(
        "--events", type=int, default=10, help="concurrency: events per stream, one per second"
    )
    p.add_argument(
        "--apps", default=",".join(APPS), help=f"concurrency: servers to compare: {', '.join(APPS)}"
    )
    p.add_argument(
        "--client-processes", type=int, default=2, help="concurrency: load generator processes"
    )
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    p.add_argument("--plot", type=Path, help="write the latency-vs-streams plot (PNG) here")
    args = p.parse_args(argv)
    if args.quick:
        args.runs = 1
        args.endpoint_counts = ""
        args.samples = 20
        args.requests = 10
        args.rounds = 1
        args.sizes = "100"
        args.events = 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # The repository root must be importable: bench/ and harness/ live there.
    from .common import REPO, machine, raise_open_files, versions

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from harness.stack import proxy_binary as stack_binary

    from . import report, scaffold, servers, streams

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        print(f"unknown parts: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    raise_open_files()

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.monotonic()
    results: dict[str, Any] = {
        "machine": machine(),
        "versions": versions(),
        "settings": {k: str(v) for k, v in vars(args).items()},
    }
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as tmp_name:
        tmp = Path(tmp_name)
        logs = tmp / "logs"
        if "scaffold" in parts:
            results["scaffold"] = scaffold.run(
                runs=args.runs,
                sizes=tuple(_ints(args.endpoint_counts)),
                source=args.template_from,
                log=log,
            )
        stream_parts = {"first-event", "one-stream", "proxies", "in-process", "concurrency"} & set(
            parts
        )
        if stream_parts:
            log("rendering the generated projects (gthread and gevent)")
            projects = {"gevent": servers.render(tmp / "app-gevent", "gevent")}
            if (
                "first-event" in parts
                or ("one-stream" in parts and not args.quick)
                or "generated/gthread" in args.apps
            ):
                projects["gthread"] = servers.render(tmp / "app-gthread", "gthread")
            if "first-event" in parts:
                log("first event: generated app, direct and through nginx")
                results["first_event"] = streams.first_event(projects, logs, args.samples, log)
            if "one-stream" in parts:
                log("one stream: 1000 events per request, keep-alive, one worker each")
                chosen = projects if not args.quick else {"gevent": projects["gevent"]}
                baselines = {
                    ref: servers.render(tmp / f"app-gevent-{n}", "gevent", vcs_ref=ref)
                    for n, ref in enumerate(args.baseline)
                }
                results["one_stream"] = streams.one_stream(
                    chosen, logs, args.requests, args.rounds, log, baselines
                )
            if "proxies" in parts:
                log("proxies: first event and events/s, direct and through each proxy")
                configs = {
                    kind: servers.render(tmp / f"app-gevent-{kind}", "gevent", kind)
                    for kind in PROXIES
                    if stack_binary(kind)
                }
                results["proxies"] = streams.proxies(
                    projects["gevent"], configs, logs, args.samples, args.requests, log
                )
            if "in-process" in parts:
                log("in-process: CPU per event without a server")
                results["in_process"] = streams.in_process(
                    projects["gevent"], 3 if args.quick else 60, log
                )
            if "concurrency" in parts:
                log("concurrency: 1 event/s streams, one server process each")
                results["concurrency"] = streams.concurrency(
                    projects,
                    logs,
                    _ints(args.sizes),
                    args.events,
                    [a.strip() for a in args.apps.split(",") if a.strip()],
                    args.client_processes,
                    log,
                )
    results["machine"]["load average at the end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    results["seconds"] = time.monotonic() - started
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if args.plot and results.get("concurrency"):
        m = results["machine"]
        report.plot(
            results["concurrency"],
            args.plot,
            f"{m['cpu']}, {m['cores']} cores; client and server on the same machine",
        )
        log(f"plot written to {args.plot}")
    return 0


def render(results: dict[str, Any]) -> str:
    from . import report

    out = [
        "# flask-stream-scaffold benchmark",
        "",
        "## Machine",
        "",
        report.kv(results["machine"]),
        "## Versions",
        "",
        report.kv(results["versions"]),
    ]
    if results["settings"].get("quick") == "True":
        out += [
            "Quick run: a taste only. Its samples are too small for the ratios, and CPU time is "
            "counted in 10 ms ticks; run without --quick for figures to quote.",
            "",
        ]
    if "scaffold" in results:
        s = results["scaffold"]
        out += [
            f"## Scaffolder (seconds, median of {s['runs']} runs)",
            "",
            "Whole processes:",
            "",
            report.kv({k: f"{v:.3f}" for k, v in s["new"].items()}),
            "In-process (import already paid):",
            "",
            report.kv({k: f"{v:.3f}" for k, v in s["inprocess"].items()}),
            "add-endpoint on a fresh project in git:",
            "",
            report.kv({k: f"{v:.3f}" for k, v in s["add-endpoint"].items()}),
        ]
        if s.get("scaling"):
            out += [
                "By number of endpoints (copier copy / update: processes; "
                "run_copy / run_new: in-process):",
                "",
                report.table(s["scaling"]),
            ]
    if "first_event" in results:
        out += [
            "## First event: server stamp at the first yield to the client's read",
            "",
            report.table(results["first_event"]),
        ]
    if "one_stream" in results:
        out += [
            "## One stream: events/s and server CPU per event",
            "",
            "One worker process each; 1000 events per request (the endpoint's cap), "
            "back-to-back requests on one keep-alive connection.",
            "",
            report.table(results["one_stream"]),
        ]
    if "proxies" in results:
        out += [
            "## Through each proxy: first event and one stream",
            "",
            "The generated project on one gevent worker, direct and through each generated "
            "proxy config (plain HTTP/1.1 listener), in one run. First event: server stamp at "
            "the first yield to the client's read; events/s: 1000-event requests back to back "
            "on one keep-alive connection.",
            "",
            report.table(results["proxies"]),
        ]
    if "in_process" in results:
        out += [
            "## In-process CPU per event (no server, no socket)",
            "",
            report.table(results["in_process"]),
        ]
    if "concurrency" in results:
        out += [
            "## Concurrent streams at 1 event/s (one server process each)",
            "",
            report.table(
                results["concurrency"],
                [
                    "server",
                    "streams",
                    "events expected",
                    "lost",
                    "failed connects",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "KB/stream",
                    "server CPU us/event",
                    "steady CPU us/event",
                    "client CPU busy %",
                    "all open after s",
                    "errors",
                ],
            ),
        ]
    out += [
        "## Ratios and goals",
        "",
        report.table(report.goals(results)),
        f"Total run time: {results['seconds']:.0f} s",
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
