#!/usr/bin/env python3
"""Rewrite params.yaml for a GPU run on a real corpus: the ladder at one budget and batch for every size.

    python bench/wiki_large.py CORPUS [--tokens 30000000] [--seed 1337] [--size NAME=wW-dD ...]

What it sets, and why:
- data: CORPUS, whole (no byte cap); tokenizer: 32768 entries, right for ~150 MB of text.
- every size of the ladder (tiny, mini, small, medium, and any --size) trains the same `--tokens`
  (rounded up to whole steps) at the same batch of 65,536 tokens (64 x 1024) and the same schedule,
  so their curves compare at equal tokens; the recipe is params.yaml's train: block, untouched.
- the learning-rate sweep at GPU scale: the base shape (width 128, depth 4), 4x and 8x its width,
  6x its depth, 2x steps of lr, each cell 8M tokens at the ladder's batch, without torch.compile
  (a compile per cell would cost more than the cell).
- longer evaluations (1M tokens during training, 2M at eval) so seed-to-seed differences are not
  evaluation noise.
- the scaling ladder in the sizes' own regime: 5 shapes (0.1M-4.7M non-embedding parameters, aspect
  ratios 32-48 like the sizes') at the sizes' budget, batch and schedule. Together they cost 9.8% of
  medium's training FLOPs (fit.json's rung_flops says exactly); at a 32k vocabulary the output layer
  is most of a narrow rung's FLOPs, which is what keeps the shapes this small. Every rung stays within
  one epoch of wiki-large's ~31M train tokens. `ladder compare` measures its seed noise on the two smallest.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import yaml

LADDER = ("tiny", "mini", "small", "medium")
BATCH = 65536
RUNG_SHAPES = ["w64-d2", "w96-d3", "w128-d3", "w192-d4", "w256-d6"]


def extra_size(text: str) -> tuple[str, int, int]:
    m = re.fullmatch(r"([a-z][a-z0-9_]*)=w(\d+)-d(\d+)", text)
    if not m or int(m[2]) % 64:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME=wWIDTH-dDEPTH with WIDTH a multiple of 64, e.g. mid=w512-d8"
        )
    return m[1], int(m[2]), int(m[3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", help="a corpus file (e.g. wiki-large.txt.xz)")
    ap.add_argument("--tokens", type=int, default=30_000_000, help="budget of every size (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=None, help="seed (default: params.yaml's)")
    ap.add_argument(
        "--size",
        type=extra_size,
        action="append",
        default=[],
        metavar="NAME=wW-dD",
        help="add a size of that shape (heads of 64) to sizes: and pipeline.sizes, e.g. mid=w512-d8",
    )
    ap.add_argument("--params", type=Path, default=Path("params.yaml"), help="file to rewrite (default: %(default)s)")
    a = ap.parse_args()
    p = yaml.safe_load(a.params.read_text())
    tokens = math.ceil(a.tokens / BATCH) * BATCH  # what a size sees: whole steps
    p["data"].update(source=str(Path(a.corpus).resolve()), max_bytes=None)
    p["tokenizer"]["vocab_size"] = 32768
    p["train"].update(seq_len=1024, eval_every=50, eval_tokens=1048576, checkpoint_every=100, log_every=10)
    for name, width, depth in a.size:
        p["sizes"][name] = {"n_layer": depth, "n_head": width // 64, "n_embd": width}
        p["pipeline"]["sizes"][name] = "base"
    for name in [*LADDER, *(s[0] for s in a.size)]:
        micro = 16 if name == "medium" else 32 if name in ("small", *(s[0] for s in a.size)) else 64
        p["sizes"][name]["train"] = {"tokens": tokens, "batch_tokens": BATCH, "micro_batch": micro}
    p["sweep"].update(
        shapes=["w128-d4", "w512-d4", "w1024-d4", "w128-d24"],
        head_dim=32,
        train={
            "tokens": 8_126_464,
            "batch_tokens": BATCH,
            "micro_batch": 32,
            "eval_every": 124,
            "checkpoint_every": 124,
            "compile": "off",
        },
        lrs=[0.004, 0.008, 0.016, 0.032, 0.064, 0.128],
    )
    p["scaling"].update(
        shapes=RUNG_SHAPES,
        head_dim=32,
        budgets=[tokens],
        holdout=[],
        train={
            "batch_tokens": BATCH,
            "micro_batch": 32,
            "eval_every": 1000,
            "checkpoint_every": 1000,
            "compile": "off",
        },
    )
    p["compare"]["noise_shapes"] = RUNG_SHAPES[:2]  # `ladder compare`'s seed noise: the two smallest rungs again
    p["eval"]["max_tokens"] = 2097152
    if a.seed is not None:
        p["seed"] = a.seed
    a.params.write_text(yaml.safe_dump(p, sort_keys=False))


if __name__ == "__main__":
    main()
