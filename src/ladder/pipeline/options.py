"""argparse types that check an option's range as it is parsed: a bad value is the parser's one line
(`argument --steps: '0': must be at least 1`), never a traceback from deep inside the command."""

from __future__ import annotations

import argparse
import math

SEED_MAX = 2**32 - 1  # numpy's generators take seeds in [0, 2**32)


def _bounds(lo, hi) -> str:
    def show(v):
        return f"{v:,}" if isinstance(v, int) else f"{v:g}"

    if lo is not None and hi is not None:
        return f"between {show(lo)} and {show(hi)}"
    return f"at least {show(lo)}" if lo is not None else f"at most {show(hi)}"


def integer(lo: int | None = None, hi: int | None = None):
    """A whole number within [lo, hi]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{text!r}: must be {_bounds(lo, hi)}")
        return value

    return parse


def real(lo: float | None = None, hi: float | None = None, above: float | None = None):
    """A finite number within [lo, hi], or greater than `above`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number")
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"{text!r}: must be greater than {above:g}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{text!r}: must be {_bounds(lo, hi)}")
        return value

    return parse


seed = integer(0, SEED_MAX)
