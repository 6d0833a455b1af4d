"""`ladder curves [SIZES]`: train and val loss against tokens, every size in one figure."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ladder.core import paths
from ladder.core.files import LadderError, atomic

OUT = paths.RESULTS / "curves.png"


def plot(sizes: list[str] | None = None, out: Path = OUT) -> Path:
    import seaborn as sns

    folders = ([paths.Size(s).folder for s in sizes] if sizes
               else sorted(p.parent.parent for p in paths.RESULTS.glob("*/live/metrics.json")))
    frames = []
    for folder in folders:
        for metric in ("loss", "val_loss"):
            tsv = folder / "live/plots/metrics" / f"{metric}.tsv"
            if not tsv.exists():
                raise LadderError(f"{tsv}: no training curve (train size {folder.name} first)")
            df = pd.read_csv(tsv, sep="\t").rename(columns={"step": "tokens", metric: "loss"})
            frames.append(df.assign(size=folder.name, metric=metric.replace("_", " ")))
    if not frames:
        raise LadderError("no training curves under results/*/live (run the pipeline first)")
    sns.set_theme(style="whitegrid")
    grid = sns.relplot(data=pd.concat(frames), x="tokens", y="loss", hue="size", style="metric", kind="line",
                       height=4, aspect=1.6)
    grid.set(xscale="log")
    grid.set_axis_labels("tokens seen", "loss (nats/token)")
    grid.figure.suptitle("Loss against tokens, by size", y=1.02)
    with atomic(out) as (tmp,):
        grid.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sizes", nargs="*", help="sizes to show (default: every trained size)")


def main(args) -> None:
    print(f"wrote {plot(args.sizes)}")
