"""The cloze items eval@size scores, built from held-out documents: here, not in the eval stage,
because `ladder lm-eval` hands lm-eval the very same items."""

from __future__ import annotations

import json
import random
import re

from ladder.pipeline import paths
from ladder.pipeline.config import Eval
from ladder.pipeline.files import need

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def cloze_items(cfg: Eval, seed: int) -> list[dict]:
    """Pick-the-true-next-sentence items from held-out documents, with sentences of other documents
    as distractors. Built from the val split, so the model never trained on them."""
    rng = random.Random(seed)
    docs = [
        [s for s in SENTENCE_END.split(json.loads(line)["text"].replace("\n", " ")) if 30 <= len(s) <= 300]
        for line in need(paths.SPLITS["val"], "val split").read_text().splitlines()
    ]
    docs = [d for d in docs if len(d) >= 2]
    if len(docs) < 2:
        return []
    items = []
    for _ in range(cfg.cloze_items):
        d = rng.randrange(len(docs))
        i = rng.randrange(len(docs[d]) - 1)
        others = [s for k in rng.sample(range(len(docs)), min(len(docs), 8)) if k != d for s in docs[k]]
        choices = [docs[d][i + 1]] + rng.sample(others, min(len(others), cfg.cloze_choices - 1))
        rng.shuffle(choices)
        items.append({"context": docs[d][i], "choices": choices, "answer": choices.index(docs[d][i + 1])})
    return items
