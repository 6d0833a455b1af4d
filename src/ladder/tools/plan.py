"""`ladder plan [SIZES]`: parameters, FLOPs, memory and estimated hours per size, on this device and on
common GPUs (the estimates and their assumptions: core/cost.py).

`ladder plan --budget FLOPS`: what the scaling fit (results/scaling/fit.json) recommends for that much
compute — the compute-optimal N and D and the loss it predicts there — and, for each size, the tokens
the budget buys it and the loss the fit predicts for them (C = 6 N D, N as the fit counts it).
"""

from __future__ import annotations

import argparse

import pandas as pd

from ladder.core import config, cost, paths, scaling
from ladder.core.files import LadderError, need, read_json


def flops(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of FLOPs (e.g. 1e18)") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a FLOP budget must be positive")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sizes", nargs="*", help="sizes to plan (default: every size in params.yaml)")
    p.add_argument("--budget", type=flops, metavar="FLOPS",
                   help="a compute budget, e.g. 1e18: the fit's compute-optimal N and D, and each size at that budget")


def budget_table(params: config.Params, sizes: list[str], budget: float) -> str:
    fit = read_json(need(paths.FIT, "the scaling fit (run `ladder fit`, or the pipeline up to it)"))
    law = scaling.Law(**fit["params"])
    laws = [scaling.from_list(x) for x in fit["bootstrap_laws"]]
    vocab, _ = cost.vocab_size(params)
    rows = []
    if law.has_optimum:
        n, d = (float(x) for x in law.optimal(budget))
        rows.append({"what": "compute-optimal", "N": n, "D": d})
    for size in sizes:
        e = cost.estimate(params, size, vocab)
        n_size = e.params_non_embedding if fit["n"] == "non_embedding" else e.params
        rows.append({"what": size, "N": n_size, "D": budget / (6 * n_size)})
    df = pd.DataFrame(rows)
    df["tokens/N"] = df["D"] / df["N"]
    df["predicted val loss"] = [law.loss(r.N, r.D) for r in df.itertuples()]
    lo_hi = [scaling.interval(laws, r.N, r.D, fit["interval"]) for r in df.itertuples()]
    df[f"{fit['interval']:.0%} interval"] = [f"{lo:.3f}-{hi:.3f}" for lo, hi in lo_hi]
    rungs = max(r["N"] for r in fit["rungs"]), max(r["D"] for r in fit["rungs"])
    df["beyond rungs (N, D)"] = [f"{r.N / rungs[0]:.3g}x, {r.D / rungs[1]:.3g}x" for r in df.itertuples()]
    head = (f"budget {budget:.3g} FLOPs (C = 6ND, N = {fit['n'].replace('_', '-')} parameters); "
            f"fit: {paths.FIT}, from rungs costing {fit['rung_flops']:.3g} FLOPs"
            + ("" if law.has_optimum else "; the fit has an exponent at 0, so no compute-optimal point"))
    return head + "\n" + df.to_string(index=False, formatters={"N": "{:.3g}".format, "D": "{:.3g}".format,
                                                               "tokens/N": "{:.1f}".format,
                                                               "predicted val loss": "{:.3f}".format})


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
