"""Batches for training and evaluation, read from memory-mapped shards.

The train stream is the train documents concatenated in the curriculum's order; a batch is B
consecutive windows of L+1 tokens starting at the cursor, which then moves B*L tokens on (and wraps
to the start for another epoch). The cursor is a single integer, saved with each checkpoint, so a
resumed run reads exactly the batches the uninterrupted run would have read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ladder.data.shards import read_shard
from ladder.pipeline.files import LadderError, need, read_json, sha256_file
from ladder.pipeline.paths import SHARD_INDEX, SHARDS


def verify(index_path: Path = SHARD_INDEX) -> dict:
    """Check every shard against the index's sha256 before spending compute on it."""
    index = read_json(need(index_path, "shard index"))
    for split in ("train", "val"):
        for s in index[split]["shards"]:
            path = SHARDS[split] / s["file"]
            if not path.exists():
                raise LadderError(f"{path}: shard listed in {index_path} is missing (rerun the shard stage)")
            if sha256_file(path) != s["sha256"]:
                raise LadderError(f"{path}: sha256 does not match {index_path} (corrupt shard; rerun the shard stage)")
    return index


class Concat:
    """Several shards read as one array."""

    def __init__(self, split: str, index: dict):
        self.parts = [read_shard(SHARDS[split] / s["file"]) for s in index[split]["shards"]]
        self.ends = np.cumsum([len(p) for p in self.parts])
        self.size = int(self.ends[-1]) if len(self.ends) else 0

    def read(self, start: int, n: int) -> np.ndarray:
        out, i = [], int(np.searchsorted(self.ends, start, side="right"))
        while n > 0:
            base = int(self.ends[i - 1]) if i else 0
            piece = self.parts[i][start - base : start - base + n]
            out.append(piece)
            start += len(piece)
            n -= len(piece)
            i += 1
        return np.concatenate(out) if len(out) > 1 else np.asarray(out[0])


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


class TrainStream:
    """Windows over the train documents in plan order (`order`: rows of start, length)."""

    def __init__(self, index: dict, order: np.ndarray):
        self.tokens = Concat("train", index)
        self.doc_start, self.doc_len = order[:, 0], order[:, 1]
        self.ends = np.cumsum(self.doc_len)  # position in the ordered stream where each doc ends
        self.size = int(self.ends[-1])
        self.contiguous = bool(np.all(self.doc_start == np.concatenate(([0], self.ends[:-1]))))

    def read(self, pos: int, n: int) -> np.ndarray:
        pos %= self.size
        out = []
        while n > 0:
            if self.contiguous:
                piece = self.tokens.read(pos, min(n, self.size - pos))
            else:
                d = int(np.searchsorted(self.ends, pos, side="right"))
                offset = pos - (int(self.ends[d - 1]) if d else 0)
                take = min(n, int(self.doc_len[d]) - offset)
                piece = self.tokens.read(int(self.doc_start[d]) + offset, take)
            out.append(piece)
            pos = (pos + len(piece)) % self.size
            n -= len(piece)
        return np.concatenate(out) if len(out) > 1 else out[0]

    def batch(self, pos: int, rows: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of shape (rows, seq_len), starting at stream position `pos`."""
        buf = np.stack([self.read(pos + r * seq_len, seq_len + 1) for r in range(rows)]).astype(np.int64)
        t = torch.from_numpy(buf)
        return t[:, :-1], t[:, 1:]


def check_windows(size: int, seq_len: int, what: str = "the val split") -> None:
    """At least one window of `seq_len` (+1 target) in `size` tokens: checked when a run starts, not at
    its first evaluation, which may come after the whole budget has trained."""
    if size <= seq_len:
        raise LadderError(
            f"{what} has {size} tokens, fewer than one window of {seq_len}; raise subset.val_fraction or give more text"
        )


def windows(read, size: int, rows: int, seq_len: int, max_tokens: int, what: str = "the val split"):
    """Consecutive (x, y) windows of a token array (`read(start, n)`, `size` tokens), up to `max_tokens`."""
    check_windows(size, seq_len, what)
    n_windows = max(1, min((size - 1) // seq_len, max_tokens // seq_len))

    def batches():
        for first in range(0, n_windows, rows):
            count = min(rows, n_windows - first)
            buf = np.stack([read((first + r) * seq_len, seq_len + 1) for r in range(count)]).astype(np.int64)
            t = torch.from_numpy(buf)
            yield t[:, :-1], t[:, 1:]

    return batches()


def val_batches(index: dict, rows: int, seq_len: int, max_tokens: int):
    val = Concat("val", index)
    return windows(val.read, val.size, rows, seq_len, max_tokens)


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)
