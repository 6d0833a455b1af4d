"""Stage predict@size: the size's final val loss as the scaling fit predicts it, written before it trains.

It reads the fit (results/scaling/fit.json) and the size's shape and budget from params.yaml, never
the size's own training, so a prediction cannot peek at the answer: changing a rung reruns the fit
and every prediction; changing a size reruns its prediction and its training, not the fit. The
interval is the spread of the fit's bootstrap refits at the size's N and D; how far the size lies
beyond the rungs (in N and in D) is written beside it, since a fit is surer inside its data.
eval@size scores the prediction against the loss training reached.
"""

from __future__ import annotations

import time

import torch

from ladder.core import paths, recipe, scaling, stamps
from ladder.core.config import Params, load
from ladder.core.files import atomic, need, read_json, write_json
from ladder.core.model import GPT
from ladder.core.progress import log


def run(params: Params, size: str) -> dict:
    fit = read_json(need(paths.FIT, "the scaling fit"))
    vocab = read_json(need(paths.SHARD_INDEX, "the shard index"))["vocab_size"]
    t = params.train_for(size)
    with torch.device("meta"):
        model = GPT(recipe.model_config(params, size, vocab))
    n = model.num_params(non_embedding=fit["n"] == "non_embedding")
    d = recipe.steps(t, model) * t.batch_tokens  # the tokens training will see
    law = scaling.Law(**fit["params"])
    lo, hi = scaling.interval([scaling.from_list(x) for x in fit["bootstrap_laws"]], n, d, fit["interval"])
    fitted = [r for r in fit["rungs"] if not r["held_out"]]
    result = {
        "size": size,
        "predicted_val_loss": round(float(law.loss(n, d)), 5),
        "interval": [round(lo, 5), round(hi, 5)],
        "level": fit["interval"],
        "N": n,
        "n": fit["n"],
        "D": d,
        "beyond_rungs": {"N": round(n / max(r["N"] for r in fitted), 2), "D": round(d / max(r["D"] for r in fitted), 2)},
        "written_at": time.time(),  # eval@size checks it against the training's start
        "built_from": stamps.stamp(params, "predict", size),
    }
    with atomic(paths.Size(size).prediction) as (tmp,):
        write_json(tmp, result)
    log.info("predict@%s: val loss %.4f (%g%% interval %.4f-%.4f) at N=%.3g, D=%.3g (%gx / %gx the largest rung)",
             size, result["predicted_val_loss"], 100 * fit["interval"], lo, hi, n, d, *result["beyond_rungs"].values())
    return result


def add_arguments(p) -> None:
    p.add_argument("--size", required=True, help="a size under sizes: (reads results/scaling/fit.json and the "
                   "size's shape and budget: train.*, sizes.<size>.*; never its training)")


def main(args) -> None:
    run(load(args.params), args.size)
