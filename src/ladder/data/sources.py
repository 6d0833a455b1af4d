"""Reading a corpus as documents: what the download stage streams, and the eval stage's extra sets.

Sources (params `data.source`): `embedded` (the Wikipedia sample shipped in data/embedded/), `hf`
(a Hugging Face dataset streamed with `datasets`, see `data.hf`), or a local file, folder or glob
of txt / jsonl / parquet files, optionally .gz/.xz/.zst compressed. Everything streams.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from ladder.pipeline.config import Data
from ladder.pipeline.files import LadderError, sha256_file
from ladder.pipeline.paths import EMBEDDED, EMBEDDED_SUMS

COMPRESSION = (".gz", ".xz", ".zst", ".bz2")
FORMATS = {".txt": "txt", ".text": "txt", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
MAX_DOC_BYTES = 100 * 1024 * 1024
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # below " ", except tab and newlines


class SourceError(LadderError):
    """The source cannot be read as a corpus; the message names the file or key."""


def local_files(source: str) -> list[Path]:
    p = Path(source)
    if p.is_dir():
        files = _once(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    elif any(c in source for c in "*?["):
        files = _once(Path(f) for f in glob.glob(source, recursive=True) if Path(f).is_file())
    elif p.is_file():
        files = [p]
    else:
        raise SourceError(f"data.source: {source!r} is not 'embedded', 'hf', an existing file, folder or glob")
    if not files:
        raise SourceError(f"data.source: {source!r} matches no files")
    return files


def _once(paths) -> list[Path]:
    """Each file once, however many paths reach it: `**` follows links, and a link loop reaches one file
    by a path per level until the system's limit (40 copies of every document)."""
    seen, files = set(), []
    for f in sorted(paths):
        if (real := f.resolve()) not in seen:
            seen.add(real)
            files.append(f)
    return files


def file_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    name = path.name
    for c in COMPRESSION:
        name = name.removesuffix(c)
    ext = Path(name).suffix.lower()
    if ext not in FORMATS:
        raise SourceError(f"{path}: cannot tell the format from {ext or 'no extension'!r}; set data.format")
    return FORMATS[ext]


def _rows(path: Path, fmt: str, cfg: Data) -> Iterator[str]:
    """Documents of one local file, read with `datasets` in streaming mode."""
    import datasets

    if path.stat().st_size == 0:
        return
    if fmt == "txt":
        by = "line" if cfg.txt_split == "line" else "paragraph"
        ds = datasets.load_dataset("text", data_files=[str(path)], sample_by=by, streaming=True, split="train")
        field = "text"
    else:
        kind = "json" if fmt == "jsonl" else "parquet"
        ds = datasets.load_dataset(kind, data_files=[str(path)], streaming=True, split="train")
        field = cfg.text_field
    blocks = (_field(row, field, path) for row in ds)
    if fmt == "txt" and cfg.txt_split == "titled":
        blocks = _titled(blocks)
    yield from blocks


def _field(row: dict, field: str, where) -> str:
    if field not in row:
        raise SourceError(f"{where}: no text field {field!r} (fields: {', '.join(row) or 'none'}); set data.text_field")
    value = row[field]
    if not isinstance(value, str):
        raise SourceError(f"{where}: field {field!r} holds {type(value).__name__}, not text")
    return value


def _titled(blocks: Iterator[str]) -> Iterator[str]:
    """Pair alternating title and body blocks (the embedded corpus's layout) into documents."""
    title = None
    for block in blocks:
        if title is None:
            title = block
        else:
            yield f"{title.strip()}\n\n{block}"
            title = None
    if title is not None:
        yield title


def _hub_resolves(name: str) -> None:
    """Fail at once when the hub's host name does not resolve (offline): `datasets` would retry until
    `hf.timeout_s`. Skipped for a local dataset folder and in offline mode, which read the cache."""
    flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    offline = any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in flags)
    if offline or Path(name).exists():
        return
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or ""
    try:
        socket.getaddrinfo(host, 443)
    except (socket.gaierror, UnicodeError) as e:
        raise SourceError(
            f"data.hf.name: cannot load {name!r}: the hub's host {host!r} does not resolve "
            f"({e}); offline? HF_HUB_OFFLINE=1 reads the local cache"
        ) from None


def _hf_rows(cfg: Data) -> Iterator[str]:
    """A streamed Hugging Face dataset; an unreachable or unknown id fails within `hf.timeout_s`."""
    if not cfg.hf.name:
        raise SourceError("data.hf.name: required when data.source is 'hf'")
    _hub_resolves(cfg.hf.name)
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(cfg.hf.timeout_s)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(cfg.hf.timeout_s)))
    import datasets

    opened: dict = {}

    def _open():
        try:
            ds = datasets.load_dataset(
                cfg.hf.name, cfg.hf.config, split=cfg.hf.split, revision=cfg.hf.revision, streaming=True
            )
            opened["it"] = iter(ds)
            opened["first"] = next(opened["it"], None)
        except Exception as e:  # noqa: BLE001 - reported as one line below
            opened["error"] = e

    t = threading.Thread(target=_open, daemon=True)
    t.start()
    t.join(cfg.hf.timeout_s)
    if t.is_alive():
        raise SourceError(
            f"data.hf.name: {cfg.hf.name!r} did not answer within {cfg.hf.timeout_s:g}s (offline or unreachable hub?)"
        )
    if "error" in opened:
        err = opened["error"]
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SourceError(f"data.hf.name: cannot load {cfg.hf.name!r}: {msg}")
    if opened["first"] is None:
        return
    where = f"hf:{cfg.hf.name}"
    yield _field(opened["first"], cfg.hf.text_field, where)
    for row in opened["it"]:
        yield _field(row, cfg.hf.text_field, where)


def documents(cfg: Data) -> tuple[Iterator[tuple[str, str]], dict]:
    """(document, where) pairs from the configured source, and a description for the manifest."""
    if cfg.source == "hf":
        desc = {
            "kind": "hf",
            "name": cfg.hf.name,
            "config": cfg.hf.config,
            "split": cfg.hf.split,
            "revision": cfg.hf.revision,
        }
        return ((d, f"hf:{cfg.hf.name}") for d in _hf_rows(cfg)), desc
    if cfg.source == "embedded":
        expected = EMBEDDED_SUMS.read_text().split()[0]
        if sha256_file(EMBEDDED) != expected:
            raise SourceError(f"{EMBEDDED}: sha256 differs from {EMBEDDED_SUMS} (corrupt or replaced corpus)")
        files, cfg = [EMBEDDED], cfg.model_copy(update={"format": "txt", "txt_split": "titled"})
    else:
        files = local_files(cfg.source)
    fmts = [file_format(f, cfg.format) for f in files]
    desc = {
        "kind": cfg.source if cfg.source == "embedded" else "local",
        "files": [{"path": str(f), "bytes": f.stat().st_size} for f in files],
    }

    def gen():
        for f, fmt in zip(files, fmts):
            try:
                for d in _rows(f, fmt, cfg):
                    yield d, str(f)
            except UnicodeDecodeError as e:
                raise SourceError(f"{f}: not UTF-8 text (byte {e.start}); convert it or drop the file") from None
            except SourceError:
                raise
            except Exception as e:  # datasets/pyarrow parse errors
                why = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise SourceError(f"{f}: cannot be read as {fmt}: {why}") from None

    return gen(), desc


def check_text(doc: str, where: str) -> None:
    if len(doc) > MAX_DOC_BYTES:
        raise SourceError(
            f"{where}: a document of {len(doc):,} characters exceeds the limit of {MAX_DOC_BYTES:,} per document"
        )
    head = doc[:4096]
    if "\x00" in head or len(CONTROL_CHARS.findall(head)) > len(head) // 10:
        raise SourceError(f"{where}: looks like binary data, not text")
