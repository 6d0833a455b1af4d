"""`ladder plan [SIZES]`: parameters, FLOPs, memory and estimated hours per size, on this device and on
common GPUs (the estimates and their assumptions: nn/cost.py).

`ladder plan --budget FLOPS`: what the scaling fit (results/scaling/fit.json) says of that much
compute: for each size, the tokens the budget buys it (its own FLOPs per token) and the loss the fit
predicts for them, with the interval, how far beyond the rungs that lies, and a warning where it is
further than the fit's extrapolation test checked; and, when the rungs span several budgets, the
lowest loss the fit finds along C = 6 N D between them.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd

from ladder.analysis import scaling
from ladder.nn import cost
from ladder.pipeline import config, paths
from ladder.pipeline.files import LadderError, need, read_json


def flops(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of FLOPs (e.g. 1e18)") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: a FLOP budget must be positive and finite")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sizes", nargs="*", help="sizes to plan (default: every size in params.yaml)")
    p.add_argument(
        "--budget",
        type=flops,
        metavar="FLOPS",
        help="a compute budget, e.g. 1e18: the fit's compute-optimal N and D, and each size at that budget",
    )


def budget_table(params: config.Params, sizes: list[str], budget: float) -> str:
    fit = read_json(need(paths.FIT, "the scaling fit (run `ladder fit`, or the pipeline up to it)"))
    budgets = scaling.budgets_of(fit)
    test = fit["extrapolation"]
    vocab, _ = cost.vocab_size(params)
    rows = []
    best = [f for f in fit["frontier"] if np.isclose(np.log10(f["flops"]), np.log10(budget), atol=0.25)]
    if best:
        rows.append(
            {
                "what": "lowest loss found" + (" (range edge)" if best[0]["edge"] else ""),
                "N": best[0]["N"],
                "D": best[0]["D"],
            }
        )
    for size in sizes:
        e = cost.estimate(params, size, vocab)
        n_size = e.params_non_embedding if fit["n"] == "non_embedding" else e.params
        rows.append({"what": size, "N": n_size, "D": budget / e.flops_per_token})
    notes = []
    for r in rows:
        p = scaling.predict(budgets, r["N"], r["D"], fit["interval"], test["per_efold"])
        r |= {
            "predicted val loss": p.value,
            f"{fit['interval']:.0%} interval": f"{p.low:.3f}-{p.high:.3f}",
            "beyond rungs (N, D)": f"{p.beyond_n:.3g}x, {p.beyond_d:.3g}x",
        }
        notes += [f"{r['what']}: {w}" for w in scaling.warnings(p, test, 0.0)]
    df = pd.DataFrame(rows)
    df.insert(3, "tokens/N", df["D"] / df["N"])
    head = (
        f"budget {budget:.3g} FLOPs; fit: {paths.FIT}, from rungs costing {fit['rung_flops']:.3g} FLOPs at "
        f"{', '.join(f'{b.tokens:,}' for b in budgets)} tokens; extrapolation tested to "
        f"{test['supported']['N']:g}x in N, {test['supported']['D']:g}x in D"
    )
    if not fit["frontier"]:
        head += "\nno compute-optimal split: the rungs measured one budget, so the fit cannot trade N against D"
    table = df.to_string(
        index=False,
        formatters={
            "N": "{:.3g}".format,
            "D": "{:.3g}".format,
            "tokens/N": "{:.1f}".format,
            "predicted val loss": "{:.3f}".format,
        },
    )
    return "\n".join([head, table, *(f"warning: {n}" for n in notes)])


def main(args) -> None:
    params = config.load(args.params)  # the sizes named are checked by the CLI
    sizes = args.sizes or list(params.sizes)
    if args.budget is None:
        print(cost.table(params, sizes))
        return
    try:
        print(budget_table(params, sizes, args.budget))
    except KeyError as e:
        raise LadderError(f"{paths.FIT}: has no {e} (written by an older ladder? rerun `ladder fit`)") from None
