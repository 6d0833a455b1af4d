"""Stage 1, download: bring the corpus into data/raw/ as one JSON document per line.

The source (`data.source`: the embedded sample, a Hugging Face dataset, or local files) is read
by core/sources.py, streaming: memory does not grow with the corpus, and `data.max_docs` /
`data.max_bytes` cap what is taken.
"""

from __future__ import annotations

import hashlib
import json

from ladder.core import paths, stamps
from ladder.core.config import Params, load
from ladder.core.files import atomic, write_json
from ladder.core.progress import log, progress
from ladder.core.sources import SourceError, check_text, documents


def run(params: Params) -> dict:
    cfg = params.data
    docs, desc = documents(cfg)
    h = hashlib.sha256()
    n_docs = n_bytes = 0
    with atomic(paths.RAW_DOCS, paths.RAW_MANIFEST) as (tmp_docs, tmp_manifest), open(tmp_docs, "w") as out, \
            progress(cfg.max_bytes, desc="download", unit="B") as bar:
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
        manifest = {"source": desc, "documents": n_docs, "text_bytes": n_bytes,
                    "sha256": h.hexdigest(), "max_docs": cfg.max_docs, "max_bytes": cfg.max_bytes,
                    "built_from": stamps.stamp(params, "download")}
        write_json(tmp_manifest, manifest)
    log.info("download: %d documents, %.1f MB of text -> %s", n_docs, n_bytes / 1e6, paths.RAW_DOCS)
    return manifest


def main(args) -> None:
    run(load(args.params))
