"""`ladder curves [SIZES]`: train and val loss against tokens, every size in one figure."""

from __future__ import annotations

import argparse
from pathlib import Path

from ladder.analysis import figures
from ladder.pipeline import paths
from ladder.pipeline.files import LadderError, atomic

OUT = paths.RESULTS / "curves.png"


def plot(sizes: list[str] | None = None, out: Path = OUT) -> Path:
    names = sizes or sorted(p.parent.name for p in paths.RESULTS.glob("*/loss.tsv"))
    if not names:
        raise LadderError("no training curves at results/*/loss.tsv (run the pipeline first)")
    frame = figures.curves([paths.RunFiles(s) for s in names])
    with atomic(out) as (tmp,):
        figures.draw(frame, tmp, "Loss against tokens, by size")
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sizes", nargs="*", help="sizes to show (default: every trained size)")


def main(args) -> None:
    print(f"wrote {plot(args.sizes)}")
