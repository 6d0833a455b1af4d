"""Stage 2, subset: a deterministic document-level sample, deduplicated, split into train and val.

Each document's fate is a function of its own text and the seed (a keyed hash), not of its
position or of what came before it, so the sample is stable when the corpus grows and the stage
streams in one pass. Exact duplicates are dropped before the split, so no text lands in both
train and val; near-duplicates (MinHash over word shingles) are dropped too with `dedup: near`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from ladder.pipeline import paths, stamps
from ladder.pipeline.config import Params, load
from ladder.pipeline.files import LadderError, atomic, need, sha256_file, write_json
from ladder.pipeline.progress import log, progress


def unit(seed: int, salt: str, text: str) -> float:
    """A uniform number in [0, 1) fixed by the seed and the document's text."""
    digest = hashlib.blake2b(text.encode(), key=f"{seed}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


class NearDuplicates:
    """MinHash LSH over word 5-gram shingles (datasketch)."""

    def __init__(self, threshold: float, seed: int):
        from datasketch import MinHash, MinHashLSH

        self._minhash = lambda: MinHash(num_perm=64, seed=seed)
        self.lsh = MinHashLSH(threshold=threshold, num_perm=64)
        self.n = 0

    def seen(self, text: str) -> bool:
        words = text.split()
        m = self._minhash()
        m.update_batch([" ".join(words[i : i + 5]).encode() for i in range(max(1, len(words) - 4))])
        if self.lsh.query(m):
            return True
        self.lsh.insert(str(self.n), m)
        self.n += 1
        return False


def run(params: Params) -> dict:
    cfg, seed = params.subset, params.seed
    raw = need(paths.RAW_DOCS, "corpus")
    seen: set[bytes] = set()
    near = NearDuplicates(cfg.near_threshold, seed) if cfg.dedup == "near" else None
    dropped: Counter = Counter()
    kept = {"train": [0, 0], "val": [0, 0]}  # documents, bytes
    total = raw.stat().st_size
    with (
        atomic(paths.SPLITS["train"], paths.SPLITS["val"], paths.SUBSET_STATS) as (tmp_train, tmp_val, tmp_stats),
        open(tmp_train, "w") as train,
        open(tmp_val, "w") as val,
        open(raw) as src,
        progress(total, desc="subset", unit="B") as bar,
    ):
        for line in src:
            bar.update(len(line))
            text = json.loads(line)["text"]
            n_chars = len(text)
            if n_chars < cfg.min_chars:
                dropped["too_short"] += 1
                continue
            if cfg.max_chars and n_chars > cfg.max_chars:
                dropped["too_long"] += 1
                continue
            digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
            if digest in seen:
                dropped["duplicate"] += 1
                continue
            seen.add(digest)
            if unit(seed, "sample", text) >= cfg.fraction:
                dropped["not_sampled"] += 1
                continue
            if near is not None and near.seen(text):
                dropped["near_duplicate"] += 1
                continue
            size = len(text.encode())
            if cfg.max_bytes and kept["train"][1] + kept["val"][1] + size > cfg.max_bytes:
                dropped["over_byte_cap"] += 1
                continue
            split = "val" if unit(seed, "split", text) < cfg.val_fraction else "train"
            (val if split == "val" else train).write(line)
            kept[split][0] += 1
            kept[split][1] += size
        for split in kept:
            if kept[split][0] == 0:
                raise LadderError(
                    f"subset: the {split} split is empty ({sum(dropped.values())} documents dropped: "
                    f"{dict(dropped)}); loosen subset.* or give a larger corpus"
                )
        stats = {
            "documents_in": sum(dropped.values()) + kept["train"][0] + kept["val"][0],
            "kept": {s: {"documents": d, "bytes": b} for s, (d, b) in kept.items()},
            "dropped": dict(sorted(dropped.items())),
            "params": cfg.model_dump(),
            "built_from": stamps.stamp(params, "subset"),
        }
        train.close()
        val.close()
        stats["sha256"] = {"train": sha256_file(tmp_train), "val": sha256_file(tmp_val)}
        write_json(tmp_stats, stats)
    log.info(
        "subset: train %d docs / %.1f MB, val %d docs / %.1f MB, dropped %s",
        kept["train"][0],
        kept["train"][1] / 1e6,
        kept["val"][0],
        kept["val"][1] / 1e6,
        dict(dropped),
    )
    return stats


def main(args) -> None:
    run(load(args.params))
