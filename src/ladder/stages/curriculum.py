"""Stage 5, curriculum: the staging plan that training follows.

Two parts: a sequence-length warm-up (phases of a context length and a share of the token budget;
the rest of the budget runs at `train.seq_len`), and an order over the train documents by a
difficulty proxy (`length`: tokens per document; `compressibility`: zlib ratio of its ids), easiest
first unless `direction: hard_first`; or the natural order (`none`); or a shuffle seeded by `seed`
(`random`: the control that tells a difficulty order's gain from merely leaving the corpus order).
The trainer reads the plan and follows it exactly.

This stage writes the `base` plan. The third proxy, the per-document loss of an already trained
smaller size, is the `score` stage's `scored` plan (score.py); each size trains on the plan that
`pipeline.sizes` names for it. Both are written by data/plans.py.
"""

from __future__ import annotations

import zlib

import numpy as np

from ladder.data.plans import write_plan
from ladder.nn.loader import Concat, documents
from ladder.pipeline import paths, stamps
from ladder.pipeline.config import Params, load
from ladder.pipeline.files import need, read_json


def difficulty(order: str, index: dict, starts: np.ndarray, lengths: np.ndarray, seed: int) -> np.ndarray:
    if order == "random":  # i.i.d. keys: sorting them is a uniform shuffle
        return np.random.default_rng(seed).random(len(starts))
    if order == "length":
        return lengths.astype(np.float64)
    # compressibility: compressed over raw size of the document's ids, read one document at a time
    tokens = Concat("train", index)
    return np.array(
        [len(zlib.compress(tokens.read(int(a), int(n)).tobytes(), 1)) / max(1, 2 * n) for a, n in zip(starts, lengths)]
    )


def run(params: Params) -> dict:
    cfg, seed = params.curriculum, params.seed
    index = read_json(need(paths.SHARD_INDEX, "shard index"))
    starts, lengths = documents(index)
    score = None if cfg.order == "none" else difficulty(cfg.order, index, starts, lengths, seed)
    info = {"order": cfg.order, "built_from": stamps.stamp(params, "curriculum")} | (
        {"seed": seed} if cfg.order == "random" else {}
    )
    return write_plan("base", cfg, index, starts, lengths, score, info, directed=cfg.order != "random")


def main(args) -> None:
    run(load(args.params))
