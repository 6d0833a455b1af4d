"""`ladder summary [SIZES]`: the eval results of every trained size, one row each."""

from __future__ import annotations

import argparse

import pandas as pd

from ladder.core import paths
from ladder.core.files import LadderError, read_json

COLUMNS = ["size", "params", "tokens_trained", "val_loss", "val_bits_per_byte", "unigram_bits_per_byte",
           "val_perplexity", "train_seconds", "train_tokens_per_s"]


def eval_table(sizes: list[str] | None = None) -> pd.DataFrame:
    files = [paths.Size(s).eval for s in sizes] if sizes else sorted(paths.RESULTS.glob("*/eval.json"))
    missing = [str(f) for f in files if not f.exists()]
    if missing or not files:
        raise LadderError(f"no eval results at {', '.join(missing) or 'results/*/eval.json'} (run the pipeline first)")
    return pd.DataFrame([read_json(f) for f in files])[COLUMNS].sort_values("params")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sizes", nargs="*", help="sizes to show (default: every results/*/eval.json)")


def main(args) -> None:
    print(eval_table(args.sizes).to_string(index=False))
