"""Stage 4, shard: token ids in a few large flat binary files (data/shards.py), plus an index with
their sha256.

Every document starts with the end-of-text token, so document boundaries can be recovered from the ids
alone. Encoding runs in `tokenizers`' own thread pool on large batches while a reader thread
parses the next batch, and shards are written sequentially; the output does not depend on the
number of threads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ladder.data import tokens
from ladder.data.shards import HEADER_BYTES, ShardWriter, dtype_for
from ladder.pipeline import paths, stamps
from ladder.pipeline.config import Params, load
from ladder.pipeline.files import atomic, jsonl_texts, need, sha256_file, write_json
from ladder.pipeline.progress import log, progress


def _prefetch(it: Iterator, depth: int = 4) -> Iterator:
    """Run an iterator in a background thread, `depth` items ahead."""
    q: queue.Queue = queue.Queue(depth)
    done = object()

    def work():
        try:
            for item in it:
                q.put(item)
        except BaseException as e:  # re-raised in the consumer
            q.put(e)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def encode_split(tok, src: Path, writer: ShardWriter, eot: int, max_tokens: int | None, bar) -> int:
    """Encode a jsonl split into `writer`; returns the document count."""
    n_docs = n_tokens = 0
    for batch in _prefetch(jsonl_texts(src, batch=1024)):
        encodings = tok.encode_batch(batch, add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) + 1 for e in encodings), dtype=np.int64, count=len(encodings))
        ids = np.empty(int(lengths.sum()), dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        ids[starts] = eot
        for start, enc in zip(starts, encodings):
            ids[start + 1 : start + 1 + len(enc.ids)] = enc.ids
        if max_tokens and n_tokens + len(ids) > max_tokens:
            ids = ids[: max_tokens - n_tokens]
        writer.write(ids)
        n_docs += len(batch)
        n_tokens += len(ids)
        bar.update(sum(len(t) for t in batch))
        if max_tokens and n_tokens >= max_tokens:
            break
    return n_docs


def run(params: Params) -> dict:
    cfg = params.shard
    for src in paths.SPLITS.values():
        need(src, "split")
    tok = tokens.load()
    eot = tok.token_to_id(tokens.EOT)
    vocab = tok.get_vocab_size()
    dtype = dtype_for(vocab)
    index = {
        "dtype": dtype.name,
        "vocab_size": vocab,
        "eot_id": eot,
        "header_bytes": HEADER_BYTES,
        "tokenizer_sha256": sha256_file(paths.TOKENIZER),
        "shard_tokens": cfg.shard_tokens,
        "built_from": stamps.stamp(params, "shard"),
    }
    total = sum(p.stat().st_size for p in paths.SPLITS.values())
    with (
        atomic(paths.SHARDS["train"], paths.SHARDS["val"], paths.SHARD_INDEX) as (tmp_train, tmp_val, tmp_index),
        progress(total, desc="shard", unit="B") as bar,
    ):
        for split, tmp in (("train", tmp_train), ("val", tmp_val)):
            tmp.mkdir()
            writer = ShardWriter(tmp, split, dtype, cfg.shard_tokens)
            cap = cfg.max_tokens if split == "train" else None
            docs = encode_split(tok, paths.SPLITS[split], writer, eot, cap, bar)
            files = writer.finish()
            index[split] = {"documents": docs, "tokens": sum(f["tokens"] for f in files), "shards": files}
        write_json(tmp_index, index)
    log.info(
        "shard: train %d tokens in %d shards, val %d tokens (%s)",
        index["train"]["tokens"],
        len(index["train"]["shards"]),
        index["val"]["tokens"],
        dtype.name,
    )
    return index


def main(args) -> None:
    run(load(args.params))
