"""Stage 5b, score: order the train documents by how hard an already trained smaller size finds them.

The scorer (`curriculum.scorer`, tiny by default) trains on the `base` plan like any size. This
stage runs its model over the whole train split and takes each document's mean loss (nats per
token) as its difficulty: the `scored` plan orders the documents by it, with the same warm-up as the
base plan. Sizes that `pipeline.sizes` sets to `scored` train on that plan. The scorer's model is an
input of this stage and this stage's plan an input of those sizes' train stages, so both Snakemake
and DVC see the edge train@tiny -> score -> train@small, and retraining the scorer rescores.

The stream is cut into the scorer's own training windows (`seq_len` tokens, no overlap), so a
token's context is what the scorer had when it learned. A loss counts for the document of the token
it is predicted from; a document's first token is predicted from its end-of-text marker.
plan.json also names the easiest and hardest documents: the hardest are often the junk
(tables, lists of names, markup) that the data stages let through.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ladder.data import tokens
from ladder.data.plans import write_plan
from ladder.nn import device as dev
from ladder.nn.checkpoint import load_trained
from ladder.nn.loader import Concat, documents, to_device, verify
from ladder.pipeline import paths, stamps
from ladder.pipeline.config import Params, load
from ladder.pipeline.files import need, read_json
from ladder.pipeline.progress import log, progress

PREVIEW_TOKENS = 24


@torch.no_grad()
def document_losses(model, index: dict, starts: np.ndarray, rows: int, device, dtype) -> np.ndarray:
    """Mean next-token loss (nats) of every train document under `model`."""
    tokens, L = Concat("train", index), model.config.block_size
    n = tokens.size
    sums, counts = np.zeros(len(starts)), np.zeros(len(starts))
    firsts = list(range(0, n - 1, L))  # window w predicts positions w+1 .. w+L from w .. w+L-1
    bar = progress(len(firsts), desc="score", unit="window")
    for i in range(0, len(firsts), rows):
        group = firsts[i : i + rows]
        x = np.zeros((len(group), L), dtype=np.int64)
        y = np.full((len(group), L), -1, dtype=np.int64)  # -1: past the end of the stream, not scored
        for r, a in enumerate(group):
            k = min(L, n - 1 - a)
            window = tokens.read(a, k + 1)
            x[r, :k], y[r, :k] = window[:-1], window[1:]
        with dev.autocast(device, dtype):
            logits, _ = model(to_device(torch.from_numpy(x), device))
        loss = (
            F.cross_entropy(
                logits.float().flatten(0, 1),
                to_device(torch.from_numpy(y), device).flatten(),
                ignore_index=-1,
                reduction="none",
            )
            .cpu()
            .numpy()
        )
        pos = (np.asarray(group)[:, None] + np.arange(L)).ravel()  # where each prediction is made from
        keep = y.ravel() >= 0
        doc = np.searchsorted(starts, pos[keep], side="right") - 1
        sums += np.bincount(doc, weights=loss[keep], minlength=len(starts))
        counts += np.bincount(doc, minlength=len(starts))
        bar.update(len(group))
    bar.close()
    return sums / np.maximum(counts, 1)


def previews(tok, index: dict, starts: np.ndarray, losses: np.ndarray, which: np.ndarray) -> list[dict]:
    tokens = Concat("train", index)
    return [
        {
            "document": int(d),
            "loss": round(float(losses[d]), 4),
            "text": tok.decode(tokens.read(int(starts[d]) + 1, PREVIEW_TOKENS).tolist()),
        }
        for d in which
    ]


def run(params: Params) -> dict:
    cfg = params.curriculum
    device = dev.pick()
    dev.setup(device)
    index = verify()
    summary = read_json(need(paths.RunFiles(cfg.scorer).summary, f"trained scorer ({cfg.scorer})"))
    model = load_trained(cfg.scorer, device)
    dtype = dev.precision(device, summary["dtype"])
    starts, lengths = documents(index)
    rows = max(1, 16384 // model.config.block_size) if device.type == "cuda" else summary["micro_batch"]
    losses = document_losses(model, index, starts, rows, device, dtype)
    by_loss = np.argsort(losses, kind="stable")
    tok = tokens.load()
    info = {
        "order": "loss",
        "scorer": cfg.scorer,
        "scorer_model_sha256": summary["model_sha256"],
        "built_from": stamps.stamp(params, "score"),
        "loss_quantiles": {f"p{q}": round(float(np.percentile(losses, q)), 4) for q in (0, 10, 50, 90, 100)},
        "easiest": previews(tok, index, starts, losses, by_loss[:3]),
        "hardest": previews(tok, index, starts, losses, by_loss[::-1][:3]),
    }
    plan = write_plan("scored", cfg, index, starts, lengths, losses, info, keep_scores=True)
    log.info(
        "score: %d documents scored by %s, loss p10 %.3f / p50 %.3f / p90 %.3f nats",
        len(starts),
        cfg.scorer,
        *(info["loss_quantiles"][k] for k in ("p10", "p50", "p90")),
    )
    return plan


def main(args) -> None:
    run(load(args.params))
