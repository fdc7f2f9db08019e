"""PNG plot of a roadmap: days to train per scenario and year, bands, parity."""
from __future__ import annotations

import textwrap

from estimator.plot import _check, _plt

COLORS = ("#c0504d", "#3b6ea8", "#4f9a4f", "#8064a2")


def plot_roadmap(result: dict, scenarios: list[str], title: str, path) -> None:
    p = _check(path)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    for i, sid in enumerate(scenarios):
        rows = [r for r in result["rows"] if r.scenario == sid and r.found]
        if not rows:
            continue
        col = COLORS[i % len(COLORS)]
        xs = [r.year for r in rows]
        ys = [r.days_with_failures for r in rows]
        ax.plot(xs, ys, "-", color=col, label=sid)
        for r in rows:
            ax.plot([r.year], [r.days_with_failures], "o", color=col,
                    markerfacecolor="white" if r.roadmap else col, markersize=7)
            ax.annotate(f"{r.days_with_failures:.3g}", (r.year, r.days_with_failures), textcoords="offset points",
                        xytext=(0, 7), ha="center", fontsize=7, color=col)
        banded = [r for r in rows if r.days_p10 is not None and r.days_p90 is not None]
        if banded:
            ax.fill_between([r.year for r in banded], [r.days_p10 for r in banded],
                            [r.days_p90 for r in banded], color=col, alpha=0.15, linewidth=0)
    par = result.get("parity")
    if par and par.get("year"):
        ax.axvline(par["year"], color="black", linestyle="--", linewidth=1)
        ax.annotate(f"parity {par['year']}", (par["year"], ax.get_ylim()[1]), textcoords="offset points",
                    xytext=(4, -14), fontsize=9)
    elif par:
        ax.text(0.99, 0.97, par["text"], transform=ax.transAxes, ha="right", va="top", fontsize=9)
    ax.set_yscale("log")
    ax.margins(y=0.12)
    from matplotlib.ticker import FuncFormatter
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(fmt)
    ax.yaxis.set_minor_formatter(fmt)
    ax.set_xlabel("year (cluster built by the end of the year)")
    ax.set_ylabel("days to train (with failures)")
    years = sorted({r.year for r in result["rows"]})
    ax.set_xticks(years)
    ax.grid(alpha=0.3, which="both")
    band = result.get("band", "not available")
    ax.plot([], [], "o", color="grey", markerfacecolor="white", label="rests on roadmap parts")
    ax.legend(loc="lower left", fontsize=8, title=f"band: {band}", title_fontsize=8)
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=10)
    fig.tight_layout()
    fig.savefig(p, dpi=120)
    plt.close(fig)
