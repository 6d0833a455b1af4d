"""Stage 4, shard: token ids in a few large flat binary files, plus an index with their sha256.

Layout of a shard: a 256-byte header of little-endian int64 (magic, version, bytes per token,
token count, rest zero) followed by the ids, uint16 while the vocabulary fits, else uint32. Every
document starts with the end-of-text token, so document boundaries can be recovered from the ids
alone. Encoding runs in `tokenizers`' own thread pool on large batches while a reader thread
parses the next batch, and shards are written sequentially; the output does not depend on the
number of threads.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from ladder.config import Shard
from ladder.files import LadderError, atomic, log, need, progress, sha256_file, write_json
from ladder.tokenizer import EOT, load as load_tokenizer, texts

MAGIC, VERSION, HEADER_BYTES = 0x4C41444445520001, 1, 256
SPLITS = {"train": Path("data/subset/train.jsonl"), "val": Path("data/subset/val.jsonl")}
TOKENIZER = Path("data/tokenizer/tokenizer.json")
OUT = {"train": Path("data/shards/train"), "val": Path("data/shards/val")}
INDEX = Path("data/shards/index.json")


def dtype_for(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


class ShardWriter:
    """Appends ids to numbered shard files of at most `shard_tokens` tokens each."""

    def __init__(self, folder: Path, prefix: str, dtype: np.dtype, shard_tokens: int):
        self.folder, self.prefix, self.dtype, self.cap = folder, prefix, dtype, shard_tokens
        self.files: list[dict] = []
        self._f = None
        self._n = 0

    def _open(self):
        path = self.folder / f"{self.prefix}-{len(self.files):05d}.bin"
        self._f = open(path, "wb")
        self._f.write(b"\0" * HEADER_BYTES)
        self._n = 0
        self.files.append({"file": path.name, "tokens": 0})

    def _close(self):
        header = np.zeros(HEADER_BYTES // 8, dtype="<i8")
        header[:4] = [MAGIC, VERSION, self.dtype.itemsize, self._n]
        self._f.seek(0)
        self._f.write(header.tobytes())
        self._f.close()
        self.files[-1]["tokens"] = self._n
        self._f = None

    def write(self, ids: np.ndarray) -> None:
        while len(ids):
            if self._f is None:
                self._open()
            take = min(len(ids), self.cap - self._n)
            self._f.write(ids[:take].astype(self.dtype, copy=False).tobytes())
            self._n += take
            ids = ids[take:]
            if self._n == self.cap:
                self._close()

    def finish(self) -> list[dict]:
        if self._f is not None:
            self._close()
        for entry in self.files:
            entry["sha256"] = sha256_file(self.folder / entry["file"])
        return self.files


def read_shard(path: Path) -> np.memmap:
    """Memory-map a shard's ids, checking its header."""
    header = np.fromfile(path, dtype="<i8", count=HEADER_BYTES // 8)
    if len(header) < 4 or header[0] != MAGIC or header[1] != VERSION:
        raise LadderError(f"{path}: not a ladder shard (bad header)")
    dtype = np.dtype(np.uint16 if header[2] == 2 else np.uint32)
    return np.memmap(path, dtype=dtype, mode="r", offset=HEADER_BYTES, shape=(int(header[3]),))


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
    for batch in _prefetch(texts(src, batch=1024)):
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


def run(cfg: Shard) -> dict:
    for src in SPLITS.values():
        need(src, "split")
    tok = load_tokenizer(TOKENIZER)
    eot = tok.token_to_id(EOT)
    vocab = tok.get_vocab_size()
    dtype = dtype_for(vocab)
    index = {"dtype": dtype.name, "vocab_size": vocab, "eot_id": eot, "header_bytes": HEADER_BYTES,
             "tokenizer_sha256": sha256_file(TOKENIZER), "shard_tokens": cfg.shard_tokens}
    total = sum(p.stat().st_size for p in SPLITS.values())
    with atomic(OUT["train"], OUT["val"], INDEX) as (tmp_train, tmp_val, tmp_index), \
            progress(total, desc="shard", unit="B") as bar:
        for split, tmp in (("train", tmp_train), ("val", tmp_val)):
            tmp.mkdir()
            writer = ShardWriter(tmp, split, dtype, cfg.shard_tokens)
            cap = cfg.max_tokens if split == "train" else None
            docs = encode_split(tok, SPLITS[split], writer, eot, cap, bar)
            files = writer.finish()
            index[split] = {"documents": docs, "tokens": sum(f["tokens"] for f in files), "shards": files}
        write_json(tmp_index, index)
    log.info("shard: train %d tokens in %d shards, val %d tokens (%s)", index["train"]["tokens"],
             len(index["train"]["shards"]), index["val"]["tokens"], dtype.name)
    return index
