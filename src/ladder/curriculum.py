"""Stage 5, curriculum: the staging plan that training follows.

Two parts: a sequence-length warm-up (phases of a context length and a share of the token budget;
the rest of the budget runs at `train.seq_len`), and an order over the train documents by a
difficulty proxy (`length`: tokens per document; `compressibility`: zlib ratio of its ids), easiest
first unless `direction: hard_first`; or the natural order (`none`); or a shuffle seeded by `seed`
(`random`: the control that tells a difficulty order's gain from merely leaving the corpus order).
The trainer reads the plan and follows it exactly.

This stage writes the `base` plan. The third proxy, the per-document loss of an already trained
smaller size, is the `score` stage's `scored` plan (score.py); each size trains on the plan that
`pipeline.sizes` names for it.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ladder.config import Curriculum
from ladder.files import atomic, log, need, read_json, sha256_file, write_json
from ladder.loader import Concat
from ladder.shard import INDEX, OUT as SHARDS, read_shard

ROOT = Path("data/curriculum")


def plan_files(plan: str) -> tuple[Path, Path]:
    """(plan.json, order.npy) of a plan: `base` (this stage) or `scored` (the score stage)."""
    return ROOT / plan / "plan.json", ROOT / plan / "order.npy"


def documents(index: dict) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets and lengths (tokens) of every train document in the concatenated stream."""
    eot = index["eot_id"]
    starts, base = [], 0
    for shard in index["train"]["shards"]:
        ids = read_shard(SHARDS["train"] / shard["file"])
        starts.append(np.flatnonzero(ids == eot) + base)
        base += len(ids)
    starts = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    lengths = np.diff(np.append(starts, base))
    return starts.astype(np.int64), lengths.astype(np.int64)


def difficulty(order: str, index: dict, starts: np.ndarray, lengths: np.ndarray, seed: int) -> np.ndarray:
    if order == "random":  # i.i.d. keys: sorting them is a uniform shuffle
        return np.random.default_rng(seed).random(len(starts))
    if order == "length":
        return lengths.astype(np.float64)
    # compressibility: compressed over raw size of the document's ids, read one document at a time
    tokens = Concat("train", index)
    return np.array([len(zlib.compress(tokens.read(int(a), int(n)).tobytes(), 1)) / max(1, 2 * n)
                     for a, n in zip(starts, lengths)])


def write_plan(plan: str, cfg: Curriculum, index: dict, starts: np.ndarray, lengths: np.ndarray,
               score: np.ndarray | None, info: dict, keep_scores: bool = False, directed: bool = True) -> dict:
    """Order the documents by `score` (None: natural order), in `cfg.direction` unless not `directed`,
    and write the plan atomically, with the scores themselves (per document, natural order) as
    scores.npy when `keep_scores`."""
    directed = directed and score is not None
    if score is None:
        order = np.arange(len(starts), dtype=np.int64)
    else:
        hard_first = directed and cfg.direction == "hard_first"
        order = np.argsort(-score if hard_first else score, kind="stable").astype(np.int64)
    out = {
        "warmup": [p.model_dump() for p in cfg.warmup],
        **info,
        "direction": cfg.direction if directed else None,
        "documents": int(len(starts)),
        "train_tokens": int(index["train"]["tokens"]),
    }
    files = [*plan_files(plan)] + ([ROOT / plan / "scores.npy"] if keep_scores else [])
    with atomic(*files) as tmps:
        with open(tmps[1], "wb") as f:
            np.save(f, np.stack([starts[order], lengths[order]], axis=1))
        if keep_scores:
            with open(tmps[2], "wb") as f:
                np.save(f, score.astype(np.float32))
        out["order_sha256"] = sha256_file(tmps[1])
        write_json(tmps[0], out)
    log.info("curriculum (%s): %d documents ordered by %s%s, warm-up %s", plan, len(starts), out["order"],
             f", {cfg.direction}" if directed else "",
             [(p.seq_len, p.share) for p in cfg.warmup] or "none")
    return out


def run(cfg: Curriculum, seed: int) -> dict:
    index = read_json(need(INDEX, "shard index"))
    starts, lengths = documents(index)
    score = None if cfg.order == "none" else difficulty(cfg.order, index, starts, lengths, seed)
    info = {"order": cfg.order} | ({"seed": seed} if cfg.order == "random" else {})
    return write_plan("base", cfg, index, starts, lengths, score, info, directed=cfg.order != "random")
