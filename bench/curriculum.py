"""Does the curriculum earn its place? Same sizes, tokens and seed, one curriculum setting at a time.

    python bench/curriculum.py warmup [--sizes tiny mini] [--seeds 1337 1338] [--tokens N]
    python bench/curriculum.py scored [--sizes mini small] [--seeds 1337 1338] [--tokens N]

`warmup`: the sequence-length warm-up off, then on (a quarter, then half the context for 15% of the
tokens each). `scored`: the documents in their natural order, then shuffled (seeded by params.yaml's
seed: the control), then ordered by the per-document loss of the trained scorer
(`curriculum.scorer`, trained first if it is not yet), easiest first, then hardest first; the
scorer itself is not among the compared sizes.

Run from a project whose data stages are built. Each setting rewrites the plans and trains every
size with every seed (`ladder train`; `--tokens` sets one budget for all of them); the script then
prints the final val losses (mean over seeds, and their spread) and draws every setting's curves in
one figure (<out>/curriculum.png), writing the curves as they come (<out>/curves.csv).
params.yaml and the plans are restored after.
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


def ladder(*args: str) -> None:
    subprocess.run(["ladder", *args], check=True)


def warmup_settings(params: dict, sizes: list[str]):
    """(name, sizes to train) per setting, after editing `params` and rebuilding the plan."""
    seq_len = params["train"]["seq_len"]
    for name, phases in (
        ("off", []),
        ("on", [{"seq_len": seq_len // 4, "share": 0.15}, {"seq_len": seq_len // 2, "share": 0.15}]),
    ):
        params["curriculum"]["warmup"] = phases
        PARAMS.write_text(yaml.safe_dump(params, sort_keys=False))
        ladder("curriculum")
        yield name, sizes


def scored_settings(params: dict, sizes: list[str]):
    scorer = params["curriculum"]["scorer"]
    sizes = [s for s in sizes if s != scorer]
    params["curriculum"].update(warmup=[], order="none")
    params["pipeline"]["sizes"] = {scorer: "base"} | {s: "base" for s in sizes}
    PARAMS.write_text(yaml.safe_dump(params, sort_keys=False))
    ladder("curriculum")
    if not (Path("results") / scorer / "model.safetensors").exists():
        ladder("train", "--size", scorer)
    yield "natural order", sizes
    params["curriculum"]["order"] = "random"  # the control: leaving the corpus order without a difficulty signal
    PARAMS.write_text(yaml.safe_dump(params, sort_keys=False))
    ladder("curriculum")
    yield "random order", sizes
    params["curriculum"]["order"] = "none"
    for direction in ("easy_first", "hard_first"):
        params["curriculum"]["direction"] = direction
        params["pipeline"]["sizes"] = {scorer: "base"} | {s: "scored" for s in sizes}
        PARAMS.write_text(yaml.safe_dump(params, sort_keys=False))
        ladder("score")
        yield f"{scorer} loss, {direction.replace('_', ' ')}", sizes


SETTINGS = {"warmup": warmup_settings, "scored": scored_settings}
TITLES = {"warmup": "Sequence-length warm-up", "scored": "Document order by the scorer's loss"}


def curves(size: str) -> pd.DataFrame:
    metrics = Path("results") / size / "live/plots/metrics"
    frames = []
    for name in ("loss", "val_loss"):
        df = pd.read_csv(metrics / f"{name}.tsv", sep="\t").rename(columns={"step": "tokens", name: "value"})
        frames.append(df.assign(metric=name))
    return pd.concat(frames)


def measure(args, out: Path) -> pd.DataFrame:
    original = PARAMS.read_text()
    params = yaml.safe_load(original)
    seeds = args.seeds or [params["seed"]]
    for size in args.sizes if args.tokens else []:
        params["sizes"][size].setdefault("train", {})["tokens"] = args.tokens
    rows = []
    try:
        for setting, sizes in SETTINGS[args.compare](params, args.sizes):
            for seed in seeds:
                PARAMS.write_text(yaml.safe_dump(params | {"seed": seed}, sort_keys=False))
                for size in sizes:
                    ladder("train", "--size", size)
                    rows.append(curves(size).assign(size=size, setting=setting, seed=seed))
                    shutil.rmtree(Path("results") / size / "ckpt")
                    pd.concat(rows).to_csv(out / "curves.csv", index=False)
    finally:
        PARAMS.write_text(original)
        ladder("curriculum")
        if args.compare == "scored":
            ladder("score")
    return pd.concat(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("compare", choices=list(SETTINGS), help="which part of the curriculum to measure")
    ap.add_argument("--sizes", nargs="+", default=["tiny", "mini"])
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="default: params.yaml's seed")
    ap.add_argument("--tokens", type=int, default=None, help="token budget of every compared size")
    ap.add_argument("--out", type=Path, default=None, help="default: results/curriculum-<compare>")
    ap.add_argument("--replot", action="store_true", help="train nothing: report and plot <out>/curves.csv")
    args = ap.parse_args()
    out = args.out or Path(f"results/curriculum-{args.compare}")
    out.mkdir(parents=True, exist_ok=True)
    data = pd.read_csv(out / "curves.csv") if args.replot else measure(args, out)
    settings = list(dict.fromkeys(data.setting))
    last = data[data.metric == "val_loss"].sort_values("tokens").groupby(["size", "setting", "seed"]).value.last()
    print("final val loss per seed:\n" + last.unstack("seed").round(4).to_string() + "\n")
    final = last.groupby(["size", "setting"]).mean().unstack("setting")[settings]
    for s in settings[1:]:
        final[f"{s} - {settings[0]}"] = final[s] - final[settings[0]]
    print(f"mean over {data.seed.nunique()} seed(s):\n" + final.round(4).to_string())

    sns.set_theme(style="whitegrid")
    grid = sns.relplot(
        data=data,
        x="tokens",
        y="value",
        hue="setting",
        style="metric",
        col="size",
        kind="line",
        height=3.5,
        aspect=1.3,
        facet_kws={"sharey": False},
    )
    grid.set_axis_labels("tokens", "loss (nats/token)")
    grid.figure.suptitle(f"{TITLES[args.compare]} (same tokens and seeds)", y=1.03)
    grid.savefig(out / "curriculum.png", dpi=120, bbox_inches="tight")
    print(f"wrote {out / 'curriculum.png'}")


if __name__ == "__main__":
    main()
