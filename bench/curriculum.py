"""Does the sequence-length warm-up earn its place? Same sizes, tokens and seed, curriculum off vs on.

    python bench/curriculum.py [--sizes tiny mini] [--out results/curriculum]

Run from a project whose data stages are built. For each setting it rewrites the curriculum plan,
trains every size (`ladder train`), keeps the loss curves, then prints the final val losses and
draws both settings' curves in one figure (<out>/curriculum.png). params.yaml is restored after.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import seaborn as sns
import yaml

PARAMS = Path("params.yaml")


def warmup_for(seq_len: int) -> list[dict]:
    return [{"seq_len": seq_len // 4, "share": 0.15}, {"seq_len": seq_len // 2, "share": 0.15}]


def curves(size: str) -> pd.DataFrame:
    metrics = Path("results") / size / "live/plots/metrics"
    frames = []
    for name in ("loss", "val_loss"):
        df = pd.read_csv(metrics / f"{name}.tsv", sep="\t").rename(columns={"step": "tokens", name: "value"})
        frames.append(df.assign(metric=name))
    return pd.concat(frames)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["tiny", "mini"])
    ap.add_argument("--out", type=Path, default=Path("results/curriculum"))
    args = ap.parse_args()
    original = PARAMS.read_text()
    params = yaml.safe_load(original)
    rows = []
    try:
        for setting in ("off", "on"):
            seq_len = params["train"]["seq_len"]
            params["curriculum"]["warmup"] = warmup_for(seq_len) if setting == "on" else []
            PARAMS.write_text(yaml.safe_dump(params, sort_keys=False))
            subprocess.run(["ladder", "curriculum"], check=True)
            for size in args.sizes:
                subprocess.run(["ladder", "train", "--size", size], check=True)
                rows.append(curves(size).assign(size=size, curriculum=setting))
                shutil.rmtree(Path("results") / size / "ckpt")
    finally:
        PARAMS.write_text(original)
        subprocess.run(["ladder", "curriculum"], check=True)
    data = pd.concat(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    data.to_csv(args.out / "curves.csv", index=False)

    final = (data[data.metric == "val_loss"].sort_values("tokens").groupby(["size", "curriculum"]).value.last()
             .unstack("curriculum"))
    final["on - off"] = final["on"] - final["off"]
    print(final.round(4).to_string())

    sns.set_theme(style="whitegrid")
    grid = sns.relplot(data=data, x="tokens", y="value", hue="curriculum", style="metric", col="size",
                       kind="line", height=3.5, aspect=1.3, facet_kws={"sharey": False})
    grid.set_axis_labels("tokens", "loss (nats/token)")
    grid.figure.suptitle("Sequence-length warm-up: off vs on (same tokens, same seed)", y=1.03)
    grid.savefig(args.out / "curriculum.png", dpi=120, bbox_inches="tight")
    print(f"wrote {args.out / 'curriculum.png'}")


if __name__ == "__main__":
    main()
