"""The documents the project's lm-eval tasks read (workflow/lm_eval/), built from the val split.

Three tasks, all on text the model never trained on: ladder_val (each held-out document scored by
rolling log-likelihood: bits per byte, as eval.json's), ladder_cloze (the very items eval@size
scored, each choice cut where eval cuts it, so lm-eval's acc_bytes checks eval.json's cloze) and
ladder_last_word (LAMBADA-style: a
document up to its last sentence, the final word to be predicted from everything before it).
"""

from __future__ import annotations

import json
from pathlib import Path

from ladder.core import paths, tokens
from ladder.core.config import Params
from ladder.core.files import atomic, need, read_json
from ladder.stages.evaluate import SENTENCE_END, cloze_items

FILES = {"ladder_val": "val.jsonl", "ladder_cloze": "cloze.jsonl", "ladder_last_word": "last_word.jsonl"}
CLOSERS = ".!?\"')]"  # what may follow a sentence's last word


def val_texts() -> list[str]:
    return [json.loads(line)["text"] for line in need(paths.SPLITS["val"], "val split").read_text().splitlines()]


def last_word(text: str) -> dict | None:
    """The document up to the end of its last sentence that closes on a word, split before that word."""
    sentences = SENTENCE_END.split(" ".join(text.split()))
    for i in range(len(sentences) - 1, -1, -1):
        head, _, word = sentences[i].rpartition(" ")
        word = word.rstrip(CLOSERS)
        if head and word.isalpha():
            return {"context": " ".join([*sentences[:i], head]), "word": word}
    return None


def cloze(params: Params, size: str) -> list[dict]:
    """eval's cloze items with each choice cut to the tokens eval scores of it (half the size's context)."""
    tok, block = tokens.load(), read_json(paths.Size(size).config)["block_size"]
    cut = lambda choice: tok.decode(tok.encode(" " + choice).ids[: block // 2]).strip()  # noqa: E731
    return [item | {"choices": [cut(c) for c in item["choices"]]} for item in cloze_items(params.eval, params.seed)]


def documents(task: str, params: Params, size: str) -> list[dict]:
    if task == "ladder_val":
        return [{"text": t} for t in val_texts()]
    if task == "ladder_cloze":
        return cloze(params, size)
    return [d for d in map(last_word, val_texts()) if d]


def write(tasks: list[str], params: Params, size: str) -> dict[str, Path]:
    """Each local task's documents for this size as jsonl under results/lm_eval/ (the paths its YAML names)."""
    written = {}
    for task in tasks:
        out = paths.LM_EVAL_DATA / FILES[task]
        with atomic(out) as (tmp,):
            tmp.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in documents(task, params, size)))
        written[task] = out
    return written
