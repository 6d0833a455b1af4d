"""Stage predict@size: the size's final val loss as the scaling fit predicts it, written before it trains.

It reads the fit (results/scaling/fit.json) and the size's shape and budget from params.yaml, never
the size's own training, so a prediction cannot peek at the answer: changing a rung reruns the fit
and every prediction; changing a size reruns its prediction and its training, not the fit. The
interval covers the fit's refits, one run's scatter and the law's form error for the distance beyond
the rungs (analysis/scaling.py). How far the size lies beyond the rungs, in N and in D, is written beside
it, with a warning where that is further than the extrapolation test checked.
"""

from __future__ import annotations

import time

import torch

from ladder.analysis import scaling
from ladder.nn import recipe
from ladder.nn.model import GPT
from ladder.pipeline import paths, stamps
from ladder.pipeline.config import Params, load
from ladder.pipeline.files import atomic, need, read_json, write_json
from ladder.pipeline.progress import log


def run(params: Params, size: str) -> dict:
    fit = read_json(need(paths.FIT, "the scaling fit"))
    index = read_json(need(paths.SHARD_INDEX, "the shard index"))
    t = params.train_for(size)
    with torch.device("meta"):
        model = GPT(recipe.model_config(params, size, index["vocab_size"]))
    n = model.num_params(non_embedding=fit["n"] == "non_embedding")
    d = recipe.steps(t, model) * t.batch_tokens  # the tokens training will see
    p = scaling.predict(scaling.budgets_of(fit), n, d, fit["interval"], fit["extrapolation"]["per_efold"])
    epochs = d / index["train"]["tokens"]
    warnings = scaling.warnings(p, fit["extrapolation"], epochs)
    result = {
        "size": size,
        "predicted_val_loss": round(p.value, 5),
        "interval": [round(p.low, 5), round(p.high, 5)],
        "level": fit["interval"],
        "N": n,
        "n": fit["n"],
        "D": d,
        "epochs": round(epochs, 3),
        "beyond_rungs": {"N": round(p.beyond_n, 2), "D": round(p.beyond_d, 2)},
        "tested_to": fit["extrapolation"]["supported"],
        "model_form_error": round(p.model_form, 5),
        "warnings": warnings,
        "written_at": time.time(),  # eval@size checks it against the training's start
        "built_from": stamps.stamp(params, "predict", size),
    }
    with atomic(paths.RunFiles(size).prediction) as (tmp,):
        write_json(tmp, result)
    log.info(
        "predict@%s: val loss %.4f (%g%% interval %.4f-%.4f) at N=%.3g, D=%.3g (%.3gx the largest rung in N, "
        "%.3gx outside the budgets in D)",
        size,
        p.value,
        100 * fit["interval"],
        p.low,
        p.high,
        n,
        d,
        p.beyond_n,
        p.beyond_d,
    )
    for w in warnings:
        log.warning("predict@%s: %s", size, w)
    return result


def add_arguments(p) -> None:
    p.add_argument(
        "--size",
        required=True,
        help="a size under sizes: (reads results/scaling/fit.json and the "
        "size's shape and budget: train.*, sizes.<size>.*; never its training)",
    )


def main(args) -> None:
    run(load(args.params), args.size)
