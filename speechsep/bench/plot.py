"""Real-time factor against MACs per second of audio, ours and the anchors, with the machine's floor.

The floor is a straight line through the origin (RTF = 2 x MACs / matmul FLOP/s), so on log-log axes
a model's height above the line is its distance to the floor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_rtf_vs_macs"]


def _rtf_at(row: dict[str, Any], seconds: str) -> float | None:
    offline = row.get("offline", {})
    if seconds in offline:
        return offline[seconds]["rtf"]
    if offline:  # the longest length measured, when the preferred one was skipped
        return offline[max(offline, key=float)]["rtf"]
    return None


def plot_rtf_vs_macs(results: dict[str, Any], path: str | Path, *, seconds: str = "4") -> Path:
    """Write the PNG; ``seconds`` picks the offline length whose RTF is plotted."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    points = []
    for row in results["models"]:
        points.append((row["name"], row["macs_per_second"] / 1e9, _rtf_at(row, seconds), "ours"))
    for row in results["anchors"]:
        if row.get("macs_per_second"):
            points.append((row["name"], row["macs_per_second"] / 1e9, _rtf_at(row, seconds), "anchor"))
    points = [p for p in points if p[2] is not None and p[1] > 0]
    if not points:
        raise ValueError("no model has both MACs and an offline time to plot")
    fig, ax = plt.subplots(figsize=(9, 6.5))
    for kind, marker, color in (("ours", "o", "tab:blue"), ("anchor", "s", "tab:red")):
        sel = [p for p in points if p[3] == kind]
        if sel:
            ax.scatter([p[1] for p in sel], [p[2] for p in sel], marker=marker, color=color, label=kind, zorder=3)
        for name, x, y, _ in sel:
            ax.annotate(name.replace("asteroid ", "").replace("ESPnet ", "ESPnet\n"), (x, y), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
    gflops = results["floor"]["matmul_gflops_median"]
    xs = [min(p[1] for p in points) / 2, max(p[1] for p in points) * 2]
    ax.plot(xs, [2 * x / gflops for x in xs], "k--", label=f"floor: 2 x MACs / {gflops:.0f} GFLOP/s matmul")
    ax.axhline(1.0, color="gray", lw=0.8, ls=":", label="real time")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):  # 0.5, 2, 10 rather than 5 x 10^-1
        axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("GMAC per second of audio (ptflops)")
    ax.set_ylabel(f"offline real-time factor ({seconds} s input or the longest measured, batch 1)")
    ax.set_title(f"RTF vs MACs, {results['machine']['cpu']}, {results['plan']['threads']} threads\n"
                 f"{results['date']} ({'quick' if results['quick'] else 'full'} run)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
