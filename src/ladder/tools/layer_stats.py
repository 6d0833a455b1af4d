"""`ladder layer-stats --size S`: per-layer activation and gradient statistics over training, as the
train stage logged them (results/<size>/live/layer_stats.tsv), in one figure."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ladder.pipeline import paths
from ladder.pipeline.files import LadderError, atomic


def plot(size: str) -> Path:
    import seaborn as sns

    tsv = paths.RunFiles(size).layer_stats
    if not tsv.exists():
        raise LadderError(f"{tsv}: no layer statistics (train size {size} first)")
    df = pd.read_csv(tsv, sep="\t").melt(id_vars=["tokens", "layer", "kind"], var_name="statistic")
    sns.set_theme(style="whitegrid")
    grid = sns.relplot(
        data=df,
        x="tokens",
        y="value",
        hue="layer",
        col="statistic",
        row="kind",
        kind="line",
        palette="viridis",
        height=2.8,
        aspect=1.4,
        facet_kws={"sharey": False},
    )
    grid.set_titles("{row_name}: {col_name}")
    grid.figure.suptitle(f"{size}: per-layer statistics over training (near_zero: share below 1% of RMS)", y=1.02)
    out = paths.RunFiles(size).folder / "layer_stats.png"
    with atomic(out) as (tmp,):
        grid.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", required=True, help="a trained size")


def main(args) -> None:
    print(f"wrote {plot(args.size)}")
