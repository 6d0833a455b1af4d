#!/usr/bin/env python3
"""Time to quality: how many tokens and seconds until GPT-2 small reaches a target val loss?

    python bench/time_to_loss.py [--size small] [--tokens 30015488] [--baseline-lrs 0.001 0.002 ...]

The recipes train the same size on the same shards, tokenizer, batch and token budget, through
the train stage (`ladder train --params <recipe>.yaml`), one after the other:

* the baseline sweep: nanoGPT's GPT-2 recipe — standard parametrization, AdamW (cosine to a tenth
  of the peak), betas (0.9, 0.95), weight decay 0.1, clipping at 1.0 — at each of --baseline-lrs.
  nanoGPT's own 6e-4 is tuned for 0.5M-token batches and thousands of steps, so the sweep, not that
  value, makes the baseline: the run with the lowest final val loss;
* ladder: params.yaml's own train: block and lr (what the pipeline ships), at the same batch.

The target defaults to the best baseline's final val loss, so that run reaches it at the end of its
budget by construction. Reported per run: tokens and wall-clock seconds of training to the first
evaluation at or below the target (linearly interpolated between evaluations), the final val loss
at equal tokens, and the ratios to the baseline's. Wall-clock includes the periodic evaluations
every run pays alike. curves.png plots every run's val loss against tokens and seconds.

Run from a project whose data stages are built (a real corpus: the embedded one is too small to
say anything at this size). params.yaml is read, never written: each recipe gets its own file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import yaml

BASELINE = dict(
    optimizer="adamw",
    mup=False,
    completep=False,
    weight_decay=0.1,
    beta1=0.9,
    beta2=0.95,
    grad_clip=1.0,
    schedule="cosine",
    min_lr_frac=0.1,
)
# 2x steps around nanoGPT's 6e-4: on an H100 (bench/NOTES-recipe.md, run 3) 0.001 beat 0.002-0.008 at this
# script's defaults, and an earlier 6e-4 run beat 0.001
BASELINE_LRS = [0.00025, 0.0005, 0.001, 0.002]


def recipes(params: dict, size: str, tokens: int, batch: int, micro: int, lrs: list[float]) -> dict[str, dict]:
    common = dict(tokens=tokens, batch_tokens=batch, micro_batch=micro)
    out = {}
    runs = [(f"adamw lr {lr:g}", BASELINE, lr) for lr in lrs] + [("ladder", {}, params["lr"])]
    for name, train, lr in runs:
        p = yaml.safe_load(yaml.safe_dump(params))
        p["lr"] = lr
        p["train"].update(train)
        own = {k: v for k, v in p["sizes"][size].get("train", {}).items() if k != "lr"}  # the run's lr is the lr
        p["sizes"][size]["train"] = {**own, **common}
        out[name] = p
    return out


def crossing(curve: pd.DataFrame, target: float, column: str) -> float | None:
    """`column` at the first evaluation at or below target, interpolated from the one before."""
    below = curve.index[curve["val_loss"] <= target]
    if not len(below):
        return None
    i = curve.index.get_loc(below[0])
    if i == 0:
        return float(curve[column].iloc[0])
    a, b = curve.iloc[i - 1], curve.iloc[i]
    f = (a["val_loss"] - target) / (a["val_loss"] - b["val_loss"])
    return float(a[column] + f * (b[column] - a[column]))


def train(name: str, params: dict, size: str, out: Path) -> pd.DataFrame:
    file = out / f"{name.replace(' ', '-')}.yaml"
    file.write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(f"results/{size}", ignore_errors=True)  # never resume the other recipe's checkpoint
    subprocess.run(["ladder", "train", "--size", size, "--params", str(file)], check=True)
    state = json.loads(Path(f"results/{size}/ckpt/state.json").read_text())
    shutil.copytree(f"results/{size}", out / name.replace(" ", "-"), dirs_exist_ok=True)
    rows = [{"tokens": tokens, **m} for tokens, m in state["history"] if "val_loss" in m]
    return pd.DataFrame(rows).assign(recipe=name)


def plot(curves: pd.DataFrame, target: float, baseline: str, file: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    data = curves.assign(Mtokens=curves["tokens"] / 1e6)
    for ax, x, label in ((axes[0], "Mtokens", "tokens (M)"), (axes[1], "seconds", "training seconds")):
        sns.lineplot(data=data, x=x, y="val_loss", hue="recipe", ax=ax, marker="o", markersize=3)
        ax.axhline(target, color="k", ls=":", lw=1, label=f"target {target:.3f} ({baseline}'s final)")
        ax.set(xlabel=label, ylabel="val loss (nats/token)")
        ax.legend(fontsize=8)
    finals = curves.groupby("recipe")["val_loss"].last()
    axes[0].set_ylim(finals.min() - 0.1, finals.max() + 0.5)  # every run's end in view, not its first steps
    fig.tight_layout()
    fig.savefig(file, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="small", help="size under sizes: in params.yaml (default: %(default)s)")
    ap.add_argument("--tokens", type=int, default=30_015_488, help="budget of each run (default: %(default)s)")
    ap.add_argument("--batch-tokens", type=int, default=65536, help="tokens per step (default: %(default)s)")
    ap.add_argument("--micro-batch", type=int, default=32, help="sequences per micro-batch (default: %(default)s)")
    ap.add_argument(
        "--baseline-lrs",
        type=float,
        nargs="+",
        default=BASELINE_LRS,
        help="the AdamW sweep's learning rates (default: %(default)s)",
    )
    ap.add_argument("--target", type=float, default=None, help="val loss to reach (default: the best baseline's final)")
    ap.add_argument("--out", type=Path, default=Path("bench-out/time_to_loss"), help="(default: %(default)s)")
    a = ap.parse_args()
    if any(lr <= 0 for lr in a.baseline_lrs):
        ap.error(f"--baseline-lrs {' '.join(map(str, a.baseline_lrs))}: every learning rate must be positive")
    a.out.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load(Path("params.yaml").read_text())
    runs = recipes(params, a.size, a.tokens, a.batch_tokens, a.micro_batch, a.baseline_lrs)
    curves = pd.concat([train(name, p, a.size, a.out) for name, p in runs.items()])
    curves.to_csv(a.out / "curves.csv", index=False)
    finals = curves.groupby("recipe", sort=False)["val_loss"].last()
    baseline = finals.drop("ladder").idxmin()
    target = a.target if a.target is not None else float(finals[baseline])
    rows = []
    for name, curve in curves.groupby("recipe", sort=False):
        curve = curve.reset_index(drop=True)
        rows.append(
            dict(
                recipe=name,
                lr=runs[name]["lr"],
                tokens_to_target=crossing(curve, target, "tokens"),
                seconds_to_target=crossing(curve, target, "seconds"),
                final_val_loss=float(curve["val_loss"].iloc[-1]),
                tokens=int(curve["tokens"].iloc[-1]),
                seconds=float(curve["seconds"].iloc[-1]),
            )
        )
    table = pd.DataFrame(rows).set_index("recipe")
    for col in ("tokens_to_target", "seconds_to_target"):
        table[col.replace("_to_target", "_ratio")] = table[col] / table.loc[baseline, col]
    edge = baseline in (f"adamw lr {min(a.baseline_lrs):g}", f"adamw lr {max(a.baseline_lrs):g}")
    print(f"target val loss {target:.4f} ({a.size}, {a.tokens:,} tokens per run, batch {a.batch_tokens:,})")
    print(f"baseline: {baseline}" + (" (at the sweep's edge: widen --baseline-lrs)" if edge else ""))
    print(table.to_string(float_format=lambda v: f"{v:,.4g}"))
    plot(curves, target, baseline, a.out / "curves.png")
    (a.out / "summary.json").write_text(
        json.dumps(
            {
                "target": target,
                "baseline": baseline,
                "at_edge": edge,
                "runs": table.reset_index().astype(object).where(table.reset_index().notna(), None).to_dict("records"),
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
