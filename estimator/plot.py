"""PNG plots for compare and sweep (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path

from estimator.errors import InputError


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        raise InputError("--plot needs matplotlib (pip install matplotlib)") from None
    return plt


def _check(path: Path) -> Path:
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise InputError(f"--plot {p}: give a .png file name")
    if p.parent and not p.parent.exists():
        raise InputError(f"--plot {p}: folder {p.parent} does not exist")
    return p


def _err(rows):
    """Asymmetric error bars (million tokens/s) from the rows' p10-p90 bands; zero where none."""
    lo = [(r.tokens_per_s - r.tokens_per_s_p10) / 1e6 if r.tokens_per_s_p10 is not None else 0.0 for r in rows]
    hi = [(r.tokens_per_s_p90 - r.tokens_per_s) / 1e6 if r.tokens_per_s_p90 is not None else 0.0 for r in rows]
    return [lo, hi]


def plot_compare(rows, title: str, path) -> None:
    p = _check(path)
    plt = _plt()
    ok = [r for r in rows if r.fits]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    names = [f"{r.chip}\n{r.chips:,} chips" for r in ok]
    axes[0].bar(names, [r.tokens_per_s / 1e6 for r in ok], color="#3b6ea8",
                yerr=_err(ok), capsize=6, error_kw={"elinewidth": 1.2, "ecolor": "#222222"})
    axes[0].set_ylabel("training throughput (million tokens/s)")
    axes[0].set_title("throughput (whiskers: p10-p90)")
    mw = [r.power_mw if r.power_mw is not None else 0.0 for r in ok]
    axes[1].bar(names, mw, color="#c0504d")
    axes[1].set_ylabel("facility power (MW, PUE included)")
    axes[1].set_title("power ('0' = unknown)")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(p, dpi=120)
    plt.close(fig)


def plot_sweep(rows, title: str, path) -> None:
    p = _check(path)
    plt = _plt()
    ok = [r for r in rows if r.fits]
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    x = [r.chips for r in ok]
    ax.plot(x, [r.tokens_per_s / 1e6 for r in ok], "o-", color="#3b6ea8", label="tokens/s")
    banded = [r for r in ok if r.tokens_per_s_p10 is not None and r.tokens_per_s_p90 is not None]
    if banded:
        ax.fill_between([r.chips for r in banded], [r.tokens_per_s_p10 / 1e6 for r in banded],
                        [r.tokens_per_s_p90 / 1e6 for r in banded], color="#3b6ea8", alpha=0.18,
                        label="p10-p90")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("chips")
    ax.set_ylabel("training throughput (million tokens/s)")
    ax2 = ax.twinx()
    ax2.plot(x, [100 * r.mfu for r in ok], "s--", color="#c0504d", label="MFU")
    ax2.set_ylabel("MFU (%)")
    ax2.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(p, dpi=120)
    plt.close(fig)
