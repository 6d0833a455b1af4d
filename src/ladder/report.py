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
