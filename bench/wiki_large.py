#!/usr/bin/env python3
"""Rewrite params.yaml for a GPU run on a real corpus: the ladder at one budget and batch for every size.

    python bench/wiki_large.py CORPUS [--tokens 30000000] [--seed 1337]

What it sets, and why:
- data: CORPUS, whole (no byte cap); tokenizer: 32768 entries, right for ~150 MB of text.
- every size of the ladder (tiny, mini, small, medium) trains the same `--tokens` at the same batch
  of 65,536 tokens (64 x 1024) and the same schedule, so their curves compare at equal tokens; the
  recipe is params.yaml's train: block, untouched.
- the learning-rate sweep at GPU scale: the base shape (width 128, depth 4), 4x and 8x its width,
  6x its depth, 2x steps of lr, each cell 8M tokens at the ladder's batch, without torch.compile
  (a compile per cell would cost more than the cell).
- longer evaluations (1M tokens during training, 2M at eval) so seed-to-seed differences are not
  evaluation noise.
- the scaling ladder: 4 shapes (0.1M-3.2M non-embedding parameters, 32x) x 3 token budgets
  (2.4M-9.4M, 4x) at the ladder's batch and recipe, so that each rung differs from small and medium
  only in shape and tokens; together 9.9% of small's training FLOPs at 30M tokens (fit.json's
  rung_flops says exactly), under the 10% cap the prediction target sets. At a 32k vocabulary the
  output layer is most of a narrow rung's FLOPs, which is what keeps the rungs this small.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

LADDER = ("tiny", "mini", "small", "medium")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", help="a corpus file (e.g. wiki-large.txt.xz)")
    ap.add_argument("--tokens", type=int, default=30_000_000, help="budget of every size (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=None, help="seed (default: params.yaml's)")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"), help="file to rewrite (default: %(default)s)")
    a = ap.parse_args()
    p = yaml.safe_load(a.params.read_text())
    p["data"].update(source=str(Path(a.corpus).resolve()), max_bytes=None)
    p["tokenizer"]["vocab_size"] = 32768
    p["train"].update(seq_len=1024, eval_every=50, eval_tokens=1048576, checkpoint_every=100, log_every=10)
    for name in LADDER:
        micro = 16 if name == "medium" else 32 if name == "small" else 64
        p["sizes"][name]["train"] = {"tokens": a.tokens, "batch_tokens": 65536, "micro_batch": micro}
    p["sweep"].update(shapes=["w128-d4", "w512-d4", "w1024-d4", "w128-d24"], head_dim=32,
                      train={"tokens": 8_126_464, "batch_tokens": 65536, "micro_batch": 32, "eval_every": 124,
                             "checkpoint_every": 124, "compile": "off"},
                      lrs=[0.004, 0.008, 0.016, 0.032, 0.064, 0.128])
    p["scaling"].update(shapes=["w64-d2", "w128-d2", "w128-d4", "w256-d4"], head_dim=32, budget="tokens",
                        budgets=[2_359_296, 4_718_592, 9_437_184], holdout=["w256-d4-4718592"],
                        train={"batch_tokens": 65536, "micro_batch": 64, "eval_every": 1000, "checkpoint_every": 1000,
                               "compile": "off"})
    p["eval"]["max_tokens"] = 2097152
    if a.seed is not None:
        p["seed"] = a.seed
    a.params.write_text(yaml.safe_dump(p, sort_keys=False))


if __name__ == "__main__":
    main()
