"""Curriculum plans on disk: the order in which training reads the train documents, and its plan.json.

Two stages write a plan (curriculum: `base`; score: `scored`) through `write_plan`; train reads
one. order.npy holds (start, length) rows of the documents in reading order.
"""

from __future__ import annotations

import numpy as np

from ladder.pipeline import paths
from ladder.pipeline.config import Curriculum
from ladder.pipeline.files import atomic, sha256_file, write_json
from ladder.pipeline.progress import log


def write_plan(
    plan: str,
    cfg: Curriculum,
    index: dict,
    starts: np.ndarray,
    lengths: np.ndarray,
    score: np.ndarray | None,
    info: dict,
    keep_scores: bool = False,
    directed: bool = True,
) -> dict:
    """Order the documents by `score` (None: natural order), in `cfg.direction` unless not `directed`,
    and write it atomically, with the scores themselves (per document, natural order) as
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
    where = paths.PlanFiles(plan)
    files = [where.plan, where.order] + ([where.scores] if keep_scores else [])
    with atomic(*files) as tmps:
        with open(tmps[1], "wb") as f:
            np.save(f, np.stack([starts[order], lengths[order]], axis=1))
        if keep_scores:
            with open(tmps[2], "wb") as f:
                np.save(f, score.astype(np.float32))
        out["order_sha256"] = sha256_file(tmps[1])
        write_json(tmps[0], out)
    log.info(
        "curriculum (%s): %d documents ordered by %s%s, warm-up %s",
        plan,
        len(starts),
        out["order"],
        f", {cfg.direction}" if directed else "",
        [(p.seq_len, p.share) for p in cfg.warmup] or "none",
    )
    return out
