"""Atomic outputs, hashing and progress: the small things every stage needs.

A stage writes into a temporary sibling and renames it into place only once complete, so a crash
or a bad input never leaves a half-written output and never destroys the previous one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

log = logging.getLogger("ladder")


class LadderError(Exception):
    """An expected failure (bad params, bad input, missing upstream output): one line, exit 1."""


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Yield temporary siblings of `paths`; on success rename each onto its path (files or folders)."""
    finals = [Path(p) for p in paths]
    tmps = []
    for p in finals:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmps.append(_tmp_sibling(p))
        _remove(tmps[-1])
    try:
        yield tmps
    except BaseException:
        for t in tmps:
            _remove(t)
        raise
    for tmp, final in zip(tmps, finals):
        if tmp.is_dir() and final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            _remove(old)
        else:
            os.replace(tmp, final)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic(path) as (tmp,):
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def progress(total: float | None = None, desc: str = "", unit: str = "it", **kw) -> tqdm:
    """A progress bar with rate and ETA on stderr; quiet when LADDER_PROGRESS=0."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        dynamic_ncols=True,
        mininterval=0.5 if sys.stderr.isatty() else 10,
        disable=os.environ.get("LADDER_PROGRESS") == "0",
        file=sys.stderr,
        **kw,
    )


def need(path: str | os.PathLike, what: str) -> Path:
    """A required input; a clear error naming it when missing."""
    path = Path(path)
    if not path.exists():
        raise LadderError(f"{path}: missing {what} (run the upstream stage first)")
    return path
