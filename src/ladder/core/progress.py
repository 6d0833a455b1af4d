"""Progress bars and log lines. Nothing here shapes a result, so no stage counts it as its code."""

from __future__ import annotations

import logging
import os
import sys

from tqdm import tqdm

log = logging.getLogger("ladder")


def progress(total: float | None = None, desc: str = "", unit: str = "it", quiet: bool = False, **kw) -> tqdm:
    """A progress bar with rate and ETA on stderr; quiet when asked or when LADDER_PROGRESS=0."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        dynamic_ncols=True,
        mininterval=0.5 if sys.stderr.isatty() else 10,
        disable=quiet or os.environ.get("LADDER_PROGRESS") == "0",
        file=sys.stderr,
        **kw,
    )
