"""The shard file format: token ids in large flat binary files.

Layout of a shard: a 256-byte header of little-endian int64 (magic, version, bytes per token,
token count, rest zero) followed by the ids, uint16 while the vocabulary fits, else uint32. The
shard stage writes shards with `ShardWriter`; everything else reads them with `read_shard`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ladder.pipeline.files import LadderError, sha256_file

MAGIC, VERSION, HEADER_BYTES = 0x4C41444445520001, 1, 256


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
        self._f = open(path, "wb")  # atomic: the shard stage's temporary folder
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
