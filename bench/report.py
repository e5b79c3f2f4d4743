"""latest.json in the shape of bench/README.md, "Results file" (extra keys allowed) and the printed table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from bench.harness import PairedFigures

TARGETS = {
    "dispatch": "ratio >= 0.6 and >= 10,000 events/s",
    "execute": "ratio >= 0.5 and >= 1,000 runs/s",
    "latency": "p50 <= 10 ms, p99 <= 50 ms",
    "api": "ratio >= 0.5",
    "health": "p95 < 20 ms",
    "scale": "100,000 workflows >= 0.9 x 100",
}


def dispatch_json(events: int, figures: PairedFigures) -> dict[str, Any]:
    extra = figures.extra_json() if hasattr(figures, "extra_json") else {}
    return {"events": events, **figures.as_json("events_per_s", "baseline_events_per_s"), **extra}


def execute_json(runs: int, figures: PairedFigures, concurrency: int) -> dict[str, Any]:
    extra = figures.extra_json() if hasattr(figures, "extra_json") else {}
    return {
        "runs": runs,
        **figures.as_json("runs_per_s", "baseline_per_s"),
        "concurrency": concurrency,
        **extra,
    }


def write(results: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    return path


def _rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    if d := results.get("dispatch"):
        rows.append(
            (
                "dispatch",
                f"{d['events_per_s']:,.0f} events/s",
                f"{d['baseline_events_per_s']:,.0f}/s tuned",
                f"{d['ratio']:.2f}",
            )
        )
        if "naive_baseline_events_per_s" in d:
            rows.append(
                (
                    "dispatch (naive)",
                    "",
                    f"{d['naive_baseline_events_per_s']:,.0f}/s naive loop",
                    f"{d['naive_ratio']:.2f}",
                )
            )
    if e := results.get("execute"):
        rows.append(
            (
                "execute",
                f"{e['runs_per_s']:,.0f} runs/s"
                + (f", {e['cpu_ms_per_run']:.2f} ms CPU/run" if "cpu_ms_per_run" in e else ""),
                f"{e['baseline_per_s']:,.0f}/s bare pipeline"
                + (
                    f" ({e['baseline_cpu_ms_per_run']:.2f} ms CPU/run)"
                    if "baseline_cpu_ms_per_run" in e
                    else ""
                ),
                f"{e['ratio']:.2f}",
            )
        )
        if "http_limit_per_s" in e:
            rows.append(("execute (HTTP limit)", "", f"{e['http_limit_per_s']:,.0f} req/s wrk -t1 -c64", ""))
    if lat := results.get("latency"):
        rows.append(
            (
                "latency",
                f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms",
                f"at {lat['rate_per_s']}/s",
                "",
            )
        )
    if a := results.get("api"):
        rows.append(
            (
                "api",
                f"{a['requests_per_s']:,.0f} req/s",
                f"{a['baseline_requests_per_s']:,.0f}/s",
                f"{a['ratio']:.2f}",
            )
        )
    if h := results.get("health"):
        rows.append(
            (
                "health",
                f"p50 {h['p50_ms']:.1f} ms, p95 {h['p95_ms']:.1f} ms",
                f"{h['runs']:,} runs stored",
                "",
            )
        )
    if s := results.get("scale"):
        per = ", ".join(f"{w:,}: {v:,.0f}/s" for w, v in zip(s["workflows"], s["events_per_s"], strict=True))
        rows.append(("scale", per, "equal spread", f"{s.get('ratio', 0):.2f}"))
        if spread := s.get("spread_over_all"):
            per = ", ".join(
                f"{w:,}: {v:,.0f}/s" for w, v in zip(spread["workflows"], spread["events_per_s"], strict=True)
            )
            rows.append(("scale (spread over all)", per, "", f"{spread.get('ratio', 0):.2f}"))
    return rows


def table(results: dict[str, Any]) -> str:
    header = ("figure", "measured", "baseline", "ratio")
    rows = [header, *_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))
        + "  "
        + ("target" if row is header else TARGETS.get(row[0], ""))
        for row in rows
    ]
    lines.insert(1, "-" * (sum(widths) + 6 + 40))
    lines.append(
        f"machine: {results['machine']['cpus']} cpus, Python {results['machine']['python']}; "
        f"took {results.get('took_s', 0):.0f} s"
    )
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    """The table for bench/README.md: ``python -m bench.report`` prints it for latest.json."""
    lines = ["| figure | measured | baseline | ratio | target |", "|---|---|---|---|---|"]
    lines += [
        f"| {name} | {measured} | {baseline} | {ratio} | {TARGETS.get(name, '')} |"
        for name, measured, baseline, ratio in _rows(results)
    ]
    if low := results.get("latency_at_20_per_s"):
        lines.append(
            f"| latency at 20/s (extra) | p50 {low['p50_ms']:.1f} ms, p99 {low['p99_ms']:.1f} ms | | | |"
        )
    for key in ("latency", "latency_at_20_per_s"):
        if (lat := results.get(key)) and "stages" in lat:
            lines += ["", f"Stages at {lat['rate_per_s']}/s (p50 / p99 ms):", ""]
            lines += ["| stage | p50 | p99 |", "|---|---:|---:|"]
            lines += [
                f"| {name} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} |"
                for name, f in lat["stages"]["stages"].items()
            ]
            if cpu := lat.get("cpu_ms_per_event"):
                lines += ["", "CPU ms per event: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    from bench.harness import RESULTS

    print(markdown(orjson.loads((RESULTS / "latest.json").read_bytes())))
