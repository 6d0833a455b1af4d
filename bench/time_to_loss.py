#!/usr/bin/env python3
"""Time to quality: how many tokens and seconds until GPT-2 small reaches a target val loss?

    python bench/time_to_loss.py [--size small] [--tokens 100000000] [--target LOSS] [--out bench-out/ttl]

Two recipes train the same size on the same shards, tokenizer, batch and token budget, through
the train stage (`ladder train --params <recipe>.yaml`), one after the other:

* baseline: nanoGPT's GPT-2 small recipe — standard parametrization, AdamW lr 6e-4 (to 6e-5 by
  cosine), betas (0.9, 0.95), weight decay 0.1, clipping at 1.0 — at this script's batch;
* ladder: params.yaml's own train: block (what the pipeline ships), at the same batch.

The target defaults to the baseline's final val loss, so the baseline reaches it at the end of its
budget by construction; pick --tokens so that this takes the time you care about (~5 minutes of an
H200 at 100M tokens for small). Reported per recipe: tokens and wall-clock seconds of training to
the first evaluation at or below the target (linearly interpolated between evaluations), and the
final val loss at equal tokens. Wall-clock includes the periodic evaluations both recipes pay alike.

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
BASELINE_LR = 6e-4


def recipes(params: dict, size: str, tokens: int, batch: int, micro: int) -> dict[str, dict]:
    common = dict(tokens=tokens, batch_tokens=batch, micro_batch=micro)
    out = {}
    for name, train, lr in (("baseline", BASELINE, BASELINE_LR), ("ladder", {}, params["lr"])):
        p = yaml.safe_load(yaml.safe_dump(params))
        p["lr"] = lr
        p["train"].update(train)
        p["sizes"][size]["train"] = {**p["sizes"][size].get("train", {}), **common}
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
    file = out / f"{name}.yaml"
    file.write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(f"results/{size}", ignore_errors=True)  # never resume the other recipe's checkpoint
    subprocess.run(["ladder", "train", "--size", size, "--params", str(file)], check=True)
    state = json.loads(Path(f"results/{size}/ckpt/state.json").read_text())
    shutil.copytree(f"results/{size}", out / name, dirs_exist_ok=True)
    rows = [{"tokens": tokens, **m} for tokens, m in state["history"] if "val_loss" in m]
    return pd.DataFrame(rows).assign(recipe=name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="small", help="size under sizes: in params.yaml (default: %(default)s)")
    ap.add_argument("--tokens", type=int, default=100_000_000, help="budget of each run (default: %(default)s)")
    ap.add_argument("--batch-tokens", type=int, default=131072, help="tokens per step (default: %(default)s)")
    ap.add_argument("--micro-batch", type=int, default=32, help="sequences per micro-batch (default: %(default)s)")
    ap.add_argument("--target", type=float, default=None, help="val loss to reach (default: the baseline's final)")
    ap.add_argument("--only", choices=["baseline", "ladder"], default=None, help="train one recipe (with --target)")
    ap.add_argument("--out", type=Path, default=Path("bench-out/time_to_loss"), help="(default: %(default)s)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load(Path("params.yaml").read_text())
    runs = recipes(params, a.size, a.tokens, a.batch_tokens, a.micro_batch)
    curves = pd.concat([train(name, p, a.size, a.out) for name, p in runs.items() if a.only in (None, name)])
    curves.to_csv(a.out / "curves.csv", index=False)
    target = a.target if a.target is not None else float(curves[curves.recipe == "baseline"]["val_loss"].iloc[-1])
    rows = []
    for name, curve in curves.groupby("recipe", sort=False):
        curve = curve.reset_index(drop=True)
        rows.append(
            dict(
                recipe=name,
                tokens_to_target=crossing(curve, target, "tokens"),
                seconds_to_target=crossing(curve, target, "seconds"),
                final_val_loss=float(curve["val_loss"].iloc[-1]),
                tokens=int(curve["tokens"].iloc[-1]),
                seconds=float(curve["seconds"].iloc[-1]),
            )
        )
    table = pd.DataFrame(rows).set_index("recipe")
    if {"baseline", "ladder"} <= set(table.index):
        for col in ("tokens_to_target", "seconds_to_target"):
            table[col.replace("_to_target", "_ratio")] = table[col] / table.loc["baseline", col]
    print(f"target val loss {target:.4f} ({a.size}, {a.tokens:,} tokens per run, batch {a.batch_tokens:,})")
    print(table.to_string(float_format=lambda v: f"{v:,.4g}"))
    (a.out / "summary.json").write_text(
        json.dumps({"target": target, "runs": table.reset_index().to_dict("records")}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
