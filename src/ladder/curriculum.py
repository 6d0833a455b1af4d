"""Stage 5, curriculum: the staging plan that training follows.

Two parts: a sequence-length warm-up (phases of a context length and a share of the token budget;
the rest of the budget runs at `train.seq_len`), and an order over the train documents by a
difficulty proxy (`length`: fewest tokens first; `compressibility`: most compressible first), or
the natural order. The trainer reads the plan and follows it exactly.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ladder.config import Curriculum
from ladder.files import atomic, log, need, read_json, sha256_file, write_json
from ladder.loader import Concat
from ladder.shard import INDEX, OUT as SHARDS, read_shard

PLAN = Path("data/curriculum/plan.json")
ORDER = Path("data/curriculum/order.npy")


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


def difficulty(order: str, index: dict, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    if order == "length":
        return lengths.astype(np.float64)
    # compressibility: compressed over raw size of the document's ids, read one document at a time
    tokens = Concat("train", index)
    return np.array([len(zlib.compress(tokens.read(int(a), int(n)).tobytes(), 1)) / max(1, 2 * n)
                     for a, n in zip(starts, lengths)])


def run(cfg: Curriculum) -> dict:
    index = read_json(need(INDEX, "shard index"))
    starts, lengths = documents(index)
    if cfg.order == "none":
        order = np.arange(len(starts), dtype=np.int64)
    else:
        order = np.argsort(difficulty(cfg.order, index, starts, lengths), kind="stable").astype(np.int64)
    plan = {
        "warmup": [p.model_dump() for p in cfg.warmup],
        "order": cfg.order,
        "documents": int(len(starts)),
        "train_tokens": int(index["train"]["tokens"]),
    }
    with atomic(PLAN, ORDER) as (tmp_plan, tmp_order):
        with open(tmp_order, "wb") as f:
            np.save(f, np.stack([starts[order], lengths[order]], axis=1))
        plan["order_sha256"] = sha256_file(tmp_order)
        write_json(tmp_plan, plan)
    log.info("curriculum: %d documents ordered by %s, warm-up %s", len(starts), cfg.order,
             [(p.seq_len, p.share) for p in cfg.warmup] or "none")
    return plan
