"""The README's pictures: scale (throughput per stored workflows) and latency (p50/p99 against targets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(results: dict[str, Any], directory: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    if scale := results.get("scale"):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        labels = [f"{w:,}" for w in scale["workflows"]]
        ax.bar(labels, scale["events_per_s"], color="#4878a8")
        ax.axhline(scale["events_per_s"][0] * 0.9, color="#c44", linestyle="--", label="target: 0.9 × at 100")
        ax.set_xlabel("stored workflows")
        ax.set_ylabel("events dispatched per second")
        ax.set_title("Dispatch throughput as workflows grow")
        ax.legend(loc="lower right")
        fig.tight_layout()
        written.append(directory / "scale.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    if latency := results.get("latency"):
        runs = [latency, *([results["latency_at_20_per_s"]] if "latency_at_20_per_s" in results else [])]
        fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 3.5))
        for ax, figure in zip([axes] if len(runs) == 1 else axes, runs, strict=True):
            names = ["p50", "p90", "p99"]
            values = [figure["p50_ms"], figure.get("p90_ms", 0), figure["p99_ms"]]
            ax.bar(names, values, color="#4878a8")
            ax.scatter(["p50", "p99"], [10, 50], color="#c44", marker="_", s=900, label="targets")
            ax.set_yscale("log")
            ax.set_ylabel("ms, event produced → sink received")
            ax.set_title(f"at {figure['rate_per_s']} events/s")
            ax.legend(loc="upper left")
        fig.suptitle("End-to-end latency")
        fig.tight_layout()
        written.append(directory / "latency.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    return written
