"""Progress bars and log lines. Nothing here shapes a result, so no stage counts it as its code."""

from __future__ import annotations

import logging
import os
import sys

from tqdm import tqdm

log = logging.getLogger("ladder")


class Lines:
    """stderr for a bar when it is a file or a pipe (a Snakemake log, CI): each refresh on a line of its
    own, since a log keeps every carriage-return redraw and shows them as one garbled line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, s: str) -> None:
        s = s.replace("\r", "").strip()
        if s:
            self.stream.write(s + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress(total: float | None = None, desc: str = "", unit: str = "it", quiet: bool = False, **kw) -> tqdm:
    """A progress bar with rate and ETA on stderr; quiet when asked or when LADDER_PROGRESS=0.

    Bytes are counted in k/M/G; steps, windows and items as plain integers ("12/40 step")."""
    tty = sys.stderr.isatty()
    return tqdm(
        **{
            "total": total,
            "desc": desc,
            "unit": unit,
            "unit_scale": unit == "B",
            "dynamic_ncols": tty,
            "mininterval": 0.5 if tty else 10,
            "disable": quiet or os.environ.get("LADDER_PROGRESS") == "0",
            "file": sys.stderr if tty else Lines(sys.stderr),
            **kw,
        }
    )
