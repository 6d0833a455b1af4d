"""Stage 8, sweep: does the best learning rate found small stay best? The report of the cells.

Each cell (stage `cell`, `ladder train --cell NAME`) trains one shape x parametrization x lr x
seed at the budget sweep.train sets. This stage reads their final val losses and writes
results/sweep/optima.json — per parametrization and shape, the loss at every lr (mean and spread
over seeds) and the lr with the lowest mean — and results/sweep/sweep.png: loss against lr, one
curve per shape, a panel per parametrization, each curve's minimum marked.

Transfer is read off the optima: `drift_steps` is how many 2x steps the best lr of each shape
sits from the best lr of the base shape (mup_base_width x mup_base_depth). Under μP with the
depth rule it should stay within one step; under the standard parametrization it drifts.
"""

from __future__ import annotations

import math

import pandas as pd

from ladder.pipeline import paths, stamps
from ladder.pipeline.config import CELL, SHAPE, Params, load
from ladder.pipeline.files import atomic, need, read_json, write_json

NAMES = {"sp": "standard", "mup": "μP + CompleteP"}


def losses(params: Params) -> pd.DataFrame:
    rows = []
    for name in params.sweep.cells():
        shape, parametrization, lr, seed = CELL.fullmatch(name).groups()
        width, depth = map(int, SHAPE.fullmatch(shape).groups())
        summary = read_json(need(paths.cell(name).summary, f"sweep cell {name}"))
        rows.append(
            dict(
                parametrization=parametrization,
                shape=shape,
                width=width,
                depth=depth,
                lr=float(lr),
                seed=int(seed),
                val_loss=math.nan if summary["diverged"] else summary["final_val_loss"],
            )
        )
    return pd.DataFrame(rows)


def finite(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 5)


def optima(df: pd.DataFrame, base: str) -> dict:
    """Per parametrization and shape: the loss at every lr (mean, spread over seeds) and the best lr."""
    out = {}
    for parametrization, by_p in df.groupby("parametrization", sort=False):
        shapes = {}
        for shape, by_s in by_p.groupby("shape", sort=False):
            # a seed that diverged makes its lr's mean NaN: that lr cannot be the best
            stats = (
                by_s.groupby("lr")["val_loss"]
                .agg(mean=lambda v: v.mean(skipna=False), std="std", count="size")
                .sort_index()
            )
            best = float(stats["mean"].idxmin())
            shapes[shape] = {
                "best_lr": best,
                "best_val_loss": round(stats.loc[best, "mean"], 5),
                "at_grid_edge": best in (stats.index[0], stats.index[-1]),
                "lrs": {
                    str(lr): {"mean": finite(r["mean"]), "std": finite(r["std"]), "seeds": int(r["count"])}
                    for lr, r in stats.iterrows()
                },  # mean null: a seed diverged
            }
        if base in shapes:
            for s in shapes.values():
                s["drift_steps"] = round(math.log2(s["best_lr"] / shapes[base]["best_lr"]))
        out[parametrization] = shapes
    return out


def plot(df: pd.DataFrame, best: dict, out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    df = df.assign(parametrization=df["parametrization"].map(NAMES))
    order = [NAMES[p] for p in NAMES if NAMES[p] in set(df["parametrization"])]
    grid = sns.relplot(
        data=df,
        x="lr",
        y="val_loss",
        hue="shape",
        col="parametrization",
        col_order=order,
        kind="line",
        marker="o",
        errorbar=("pi", 100),
        height=3.6,
        aspect=1.2,
        facet_kws={"sharey": True},
    )
    palette = dict(zip(df["shape"].unique(), sns.color_palette(n_colors=df["shape"].nunique())))
    for parametrization, shapes in best.items():
        ax = grid.axes_dict[NAMES[parametrization]]
        for shape, s in shapes.items():
            ax.scatter(
                [s["best_lr"]],
                [s["best_val_loss"]],
                marker="*",
                s=220,
                edgecolor=palette[shape],
                color="white" if s["at_grid_edge"] else palette[shape],
                linewidth=1.5,
                zorder=5,
            )
    lrs = sorted(df["lr"].unique())
    grid.set(xscale="log", xticks=lrs, xticklabels=[f"{lr:g}" for lr in lrs])
    grid.tick_params(axis="x", which="minor", bottom=False)
    grid.set_axis_labels("learning rate (2x steps)", "final val loss (nats/token)")
    grid.set_titles("{col_name}")
    grid.figure.suptitle(
        "Learning-rate transfer: ★ best lr per shape, ☆ at the grid's edge (band: spread over seeds)", y=1.03
    )
    grid.savefig(out, dpi=110, bbox_inches="tight", format="png")  # atomic: run()'s temporary sibling


def run(params: Params) -> dict:
    df = losses(params)
    t = params.train
    base = f"w{t.mup_base_width}-d{t.mup_base_depth}"
    best = optima(df, base)
    result = {"base_shape": base, "optima": best, "cells": len(df), "built_from": stamps.stamp(params, "sweep")}
    with atomic(paths.SWEEP_OPTIMA, paths.SWEEP_FIGURE) as (tmp_json, tmp_png):
        plot(df, best, tmp_png)
        write_json(tmp_json, result)
    return result


def main(args) -> None:
    result = run(load(args.params))
    for parametrization, shapes in result["optima"].items():
        drift = {s: v.get("drift_steps") for s, v in shapes.items()}
        print(
            f"{NAMES[parametrization]}: best lr per shape { ({s: v['best_lr'] for s, v in shapes.items()}) }, "
            f"drift in 2x steps from {result['base_shape']}: {drift}"
        )
    print(f"wrote {paths.SWEEP_OPTIMA} and {paths.SWEEP_FIGURE}")
