"""Stage 1, download: bring the corpus into data/raw/ as one JSON document per line.

The source (`data.source`: the embedded sample, a Hugging Face dataset, or local files) is read
by data/sources.py, streaming: memory does not grow with the corpus, and `data.max_docs` /
`data.max_bytes` cap what is taken.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from ladder.data.sources import SourceError, check_text, documents, file_format
from ladder.pipeline import paths, stamps
from ladder.pipeline.config import Params, load
from ladder.pipeline.files import atomic, write_json
from ladder.pipeline.progress import log, progress


def varint(buf: bytes, i: int) -> tuple[int, int]:
    """An xz multibyte integer at buf[i:], and where the next field starts."""
    value = shift = 0
    while True:
        value |= (buf[i] & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if buf[i - 1] < 0x80:
            return value, i


def xz_size(path: Path) -> int | None:
    """Uncompressed size of a single-stream .xz file, read from its index (the file's last bytes)."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        end = f.tell()
        f.seek(max(0, end - 12))
        footer = f.read(12)
        if len(footer) < 12 or footer[-2:] != b"YZ":
            return None
        index_size = (struct.unpack("<I", footer[4:8])[0] + 1) * 4
        f.seek(end - 12 - index_size)
        index = f.read(index_size)
    if not index or index[0] != 0:
        return None
    records, i = varint(index, 1)
    total = 0
    for _ in range(records):
        _, i = varint(index, i)
        size, i = varint(index, i)
        total += size
    return total


def text_size(path: Path) -> int | None:
    """Bytes in a plain, .xz or .gz text file; None where a file does not say (bz2, zst)."""
    if path.suffix in (".txt", ".text"):
        return path.stat().st_size
    if path.suffix == ".xz":
        return xz_size(path)
    if path.suffix == ".gz":  # the gzip trailer holds the size modulo 4 GiB
        with open(path, "rb") as f:
            f.seek(-4, 2)
            return struct.unpack("<I", f.read(4))[0]
    return None


def expected_bytes(cfg, desc: dict) -> int | None:
    """What the bar counts to: the corpus's text bytes where its files give them, within the
    `data.max_bytes` cap; the cap alone otherwise (a Hugging Face stream, jsonl, parquet)."""
    files = [Path(f["path"]) for f in desc.get("files", [])]
    sizes = [text_size(f) if file_format(f, cfg.format) == "txt" else None for f in files]
    known = sum(sizes) if files and None not in sizes else None
    if known is None:
        return cfg.max_bytes
    return min(known, cfg.max_bytes) if cfg.max_bytes else known


def run(params: Params) -> dict:
    cfg = params.data
    docs, desc = documents(cfg)
    h = hashlib.sha256()
    n_docs = n_bytes = 0
    with (
        atomic(paths.RAW_DOCS, paths.RAW_MANIFEST) as (tmp_docs, tmp_manifest),
        open(tmp_docs, "w") as out,
        progress(expected_bytes(cfg, desc), desc="download", unit="B") as bar,
    ):
        for doc, where in docs:
            doc = doc.strip()
            if not doc:
                continue
            check_text(doc, where)
            size = len(doc.encode())
            if cfg.max_bytes and n_bytes + size > cfg.max_bytes:
                break
            line = json.dumps({"text": doc}, ensure_ascii=False) + "\n"
            out.write(line)
            h.update(line.encode())
            n_docs += 1
            n_bytes += size
            bar.update(size)
            if cfg.max_docs and n_docs >= cfg.max_docs:
                break
        out.close()
        if n_docs == 0:
            raise SourceError(f"data.source: {cfg.source!r} yielded no text (empty corpus)")
        manifest = {
            "source": desc,
            "documents": n_docs,
            "text_bytes": n_bytes,
            "sha256": h.hexdigest(),
            "max_docs": cfg.max_docs,
            "max_bytes": cfg.max_bytes,
            "built_from": stamps.stamp(params, "download"),
        }
        write_json(tmp_manifest, manifest)
    log.info("download: %d documents, %.1f MB of text -> %s", n_docs, n_bytes / 1e6, paths.RAW_DOCS)
    return manifest


def main(args) -> None:
    run(load(args.params))
