"""Loss curves as a figure: one size's, which eval@size draws for `snakemake --report`, or several
sizes' in one, which `ladder curves` draws. Both read the curves train@size writes (RunFiles.curves)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ladder.pipeline import paths
from ladder.pipeline.files import LadderError


def curves(sizes: list[paths.RunFiles]) -> pd.DataFrame:
    """Train and val loss by tokens seen: one row per point, with its size and metric."""
    frames = []
    for size in sizes:
        for metric, tsv in size.curves.items():
            if not tsv.exists():
                raise LadderError(f"{tsv}: no training curve (train size {size.name} first)")
            df = pd.read_csv(tsv, sep="\t").rename(columns={metric: "loss"})
            frames.append(df.assign(size=size.name, metric=metric.replace("_", " ")))
    return pd.concat(frames, ignore_index=True)


def draw(frame: pd.DataFrame, out: Path, title: str, prediction: dict | None = None) -> None:
    """Loss against tokens (log x), a line per size and metric; with a prediction, the scaling fit's
    predicted final val loss and its interval as a point at the tokens trained."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    sns.lineplot(data=frame, x="tokens", y="loss", hue="size", style="metric", ax=ax)
    if prediction:
        lo, hi = prediction["interval"]
        p = prediction["predicted_val_loss"]
        ax.errorbar(
            [prediction["D"]],
            [p],
            yerr=[[p - lo], [hi - p]],
            fmt="X",
            color="black",
            capsize=4,
            label=f"predicted val loss ({prediction['level']:.0%} interval)",
        )
        ax.legend(fontsize=8)
    ax.set(xscale="log", xlabel="tokens seen", ylabel="loss (nats/token)", title=title)
    ax.xaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2, 5)))  # labels at 1, 2, 5 x 10^k
    for axis in (ax.xaxis.set_major_formatter, ax.xaxis.set_minor_formatter):
        axis(matplotlib.ticker.EngFormatter(sep=""))  # 200k, 1M
    fig.tight_layout()
    fig.savefig(out, dpi=110, format="png")  # atomic: the callers' temporary sibling
    plt.close(fig)
