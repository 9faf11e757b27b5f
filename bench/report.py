"""Printing the figures: markdown tables, the ratios against the goals, the latency plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"
    if isinstance(value, int) and abs(value) >= 10000:
        return f"{value:,}"
    return str(value)


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "(nothing measured)\n"
    columns = columns or [c for c in rows[0] if any(r.get(c) not in (None, "") for r in rows)]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def kv(mapping: dict[str, Any]) -> str:
    return table([{"": k, "value": v} for k, v in mapping.items()], ["", "value"])


def _find(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return a / b


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparison ratios, each with its goal and whether this run meets it."""
    out: list[dict[str, Any]] = []

    def add(what: str, value: float | None, goal: str, ok: bool | None, unit: str = "x") -> None:
        shown = (
            "-"
            if value is None
            else (f"{value:.2f}{unit}" if unit == "x" else f"{value:.2f} {unit}")
        )
        verdict = "-" if ok is None or value is None else ("met" if ok else "NOT met")
        out.append({"figure": what, "measured": shown, "goal": goal, "verdict": verdict})

    def add_proxy_cost(what: str, extra_ms: float) -> None:
        """A proxy's added latency to the first event, against the 5 ms goal."""
        add(what, extra_ms, "<= 5 ms", extra_ms <= 5, unit="ms")

    scaffold = results.get("scaffold")
    if scaffold:
        new = scaffold["new"]
        r = _ratio(new["stream-scaffold new"], new["copier copy"])
        add(
            "stream-scaffold new / copier copy (whole process, median)",
            r,
            "<= 1.10x",
            r is not None and r <= 1.10,
        )
        r = _ratio(new["stream-scaffold new --no-git"], new["copier copy"])
        add("stream-scaffold new --no-git / copier copy", r, "(information)", None)
        r = _ratio(new["stream-scaffold new"], new["copier copy + git init + commit"])
        add("stream-scaffold new / (copier copy + git init + commit)", r, "(information)", None)
        add_ = scaffold["add-endpoint"]
        r = _ratio(
            add_["stream-scaffold add-endpoint"],
            add_["copier update (:current:, one more endpoint)"],
        )
        add("stream-scaffold add-endpoint / copier update", r, "(information)", None)
        for row in scaffold.get("scaling", []):
            r = _ratio(row["stream-scaffold update"], row["copier update"])
            add(
                f"stream-scaffold update / copier update, {row['endpoints']} endpoints",
                r,
                "(information)",
                None,
            )

    first = results.get("first_event")
    if first:
        for worker_class in ("gthread", "gevent"):
            direct = _find(first, server=f"generated, gunicorn {worker_class}", path="direct")
            proxied = _find(first, server=f"generated, gunicorn {worker_class}", path="nginx")
            if direct and proxied:
                add_proxy_cost(
                    f"first event through nginx - direct, {worker_class} (p50)",
                    proxied["p50 ms"] - direct["p50 ms"],
                )

    through = results.get("proxies")
    if through:
        direct = _find(through, path="direct")
        for row in through:
            if direct and row is not direct:
                add_proxy_cost(
                    f"first event through {row['path']} - direct (p50)",
                    row["first event p50 ms"] - direct["first event p50 ms"],
                )

    one = results.get("one_stream")
    if one:
        gen = _find(one, server="generated/gevent")
        bare = _find(one, server="bare Flask/gevent")
        star = _find(one, server="sse-starlette/uvicorn")
        if gen and star:
            r = _ratio(gen["events/s"], star["events/s"])
            add(
                "one stream events/s: generated / sse-starlette",
                r,
                ">= 1.30x",
                r is not None and r >= 1.3,
            )
        if bare and star:
            r = _ratio(bare["events/s"], star["events/s"])
            add("one stream events/s: bare Flask / sse-starlette", r, "(reference: ~1.5x)", None)
        if gen and bare:
            r = _ratio(gen["server CPU us/event"], bare["server CPU us/event"])
            add("CPU per event: generated / bare Flask", r, "<= 1.15x", r is not None and r <= 1.15)
        for row in one:
            if gen and row["server"].startswith("generated/gevent @"):
                # --baseline: the same app before a change; the ratio is what the change costs.
                r = _ratio(gen["server CPU us/event"], row["server CPU us/event"])
                add(f"CPU per event: generated / {row['server']}", r, "(a change's cost)", None)
        if gen and star:
            r = _ratio(gen["server CPU us/event"], star["server CPU us/event"])
            add("CPU per event: generated / sse-starlette", r, "(information)", None)
        bare_json = _find(one, server="bare Flask+JSON/gevent")
        if gen and bare_json:
            r = _ratio(gen["server CPU us/event"], bare_json["server CPU us/event"])
            add(
                "CPU per event: generated / bare Flask sending the same JSON",
                r,
                "(information)",
                None,
            )
        gen_t = _find(one, server="generated/gthread")
        bare_t = _find(one, server="bare Flask/gthread")
        if gen_t and bare_t:
            r = _ratio(gen_t["server CPU us/event"], bare_t["server CPU us/event"])
            add("CPU per event on gthread: generated / bare Flask", r, "(information)", None)
        if gen_t and star:
            r = _ratio(gen_t["events/s"], star["events/s"])
            add(
                "one stream events/s: generated on gthread / sse-starlette",
                r,
                "(information)",
                None,
            )

    conc = results.get("concurrency")
    if conc:
        largest = max(r["streams"] for r in conc)
        gen = _find(conc, server="generated/gevent", streams=largest)
        bare = _find(conc, server="bare Flask/gevent", streams=largest)
        star = _find(conc, server="sse-starlette/uvicorn", streams=largest)
        if gen and star:
            r = _ratio(gen["KB/stream"], star["KB/stream"])
            add(
                f"memory per stream: generated / sse-starlette ({largest} streams)",
                r,
                "<= 0.60x",
                r is not None and r <= 0.6,
            )
        if gen and bare:
            r = _ratio(gen["KB/stream"], bare["KB/stream"])
            add(
                f"memory per stream: generated / bare Flask ({largest} streams)",
                r,
                "(information)",
                None,
            )
        if gen:
            add(
                f"generated: events lost at {largest} streams",
                float(gen["lost"]),
                "0 (goal at 10,000)",
                gen["lost"] == 0,
                unit="events",
            )
            add(
                f"generated: p99 delivery latency at {largest} streams",
                gen["p99 ms"],
                "< 10 ms (goal at 10,000)",
                gen["p99 ms"] < 10,
                unit="ms",
            )
    return out


def plot(rows: list[dict[str, Any]], path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    servers = list(dict.fromkeys(r["server"] for r in rows))
    colors = dict(zip(servers, ["tab:blue", "tab:gray", "tab:orange", "tab:green"], strict=False))
    for server in servers:
        points = sorted((r for r in rows if r["server"] == server), key=lambda r: r["streams"])
        xs = [r["streams"] for r in points]
        ax.plot(
            xs, [r["p99 ms"] for r in points], "o-", color=colors[server], label=f"{server} p99"
        )
        ax.plot(
            xs,
            [r["p50 ms"] for r in points],
            "s--",
            color=colors[server],
            alpha=0.6,
            label=f"{server} p50",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent streams (1 event/s each, one server process)")
    ax.set_ylabel("delivery latency, ms (server stamp to client read)")
    ax.set_title("SSE delivery latency against concurrent streams\n" + subtitle, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
