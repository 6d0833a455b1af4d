"""Tables and plots of results across the ladder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ladder.files import LadderError, read_json

COLUMNS = ["size", "params", "tokens_trained", "val_loss", "val_bits_per_byte", "unigram_bits_per_byte",
           "val_perplexity", "train_seconds", "train_tokens_per_s"]


def eval_table(sizes: list[str] | None = None) -> pd.DataFrame:
    files = [Path("results") / s / "eval.json" for s in sizes] if sizes else sorted(Path("results").glob("*/eval.json"))
    missing = [str(f) for f in files if not f.exists()]
    if missing or not files:
        raise LadderError(f"no eval results at {', '.join(missing) or 'results/*/eval.json'} (run the pipeline first)")
    return pd.DataFrame([read_json(f) for f in files])[COLUMNS].sort_values("params")


def print_summary(sizes: list[str] | None = None) -> None:
    print(eval_table(sizes).to_string(index=False))


def plot_curves(sizes: list[str] | None = None, out: Path = Path("results/curves.png")) -> Path:
    """Train and val loss against tokens, every size in one figure."""
    import seaborn as sns

    folders = [Path("results") / s for s in sizes] if sizes else sorted(p.parent.parent for p in Path("results").glob("*/live/metrics.json"))
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
    grid.savefig(out, dpi=120, bbox_inches="tight")
    return out


def plot_layer_stats(size: str) -> Path:
    """Per-layer activation and gradient statistics over training, as logged by the train stage."""
    import seaborn as sns

    tsv = Path("results") / size / "live/layer_stats.tsv"
    if not tsv.exists():
        raise LadderError(f"{tsv}: no layer statistics (train size {size} first)")
    df = pd.read_csv(tsv, sep="\t").melt(id_vars=["tokens", "layer", "kind"], var_name="statistic")
    sns.set_theme(style="whitegrid")
    grid = sns.relplot(data=df, x="tokens", y="value", hue="layer", col="statistic", row="kind", kind="line",
                       palette="viridis", height=2.8, aspect=1.4, facet_kws={"sharey": False})
    grid.set_titles("{row_name}: {col_name}")
    grid.figure.suptitle(f"{size}: per-layer statistics over training (near_zero: share below 1% of RMS)", y=1.02)
    out = tsv.parent.parent / "layer_stats.png"
    grid.savefig(out, dpi=110, bbox_inches="tight")
    return out
