"""Stage 7, eval@size: how good is the trained model, in numbers comparable across the ladder.

Bits per byte is the headline: loss summed over the val tokens, in bits, over the UTF-8 bytes those
tokens stand for, so it compares across tokenizers. Special tokens are left out of both sums. A
unigram model fitted to the train shards is scored on the same tokens as the floor any trained
model must clear.

Two files: eval.json holds the headline numbers (DVC's metrics, one column each in `dvc exp show`),
eval_provenance.json everything else: the details behind them (the unigram floor, parameter count
and speed among them), the samples, and what the result was built from (the stage's manifest).
Beside them, samples.md and curves.png (the training curves with the prediction on them) are what
`snakemake --report` shows of the size.

The prediction (stage predict@size, from the scaling fit) is scored here: against the train stage's
final val loss, which is measured as the rungs' losses the fit was made from are (the same held-out
tokens, train.eval_tokens), so the error is the fit's and not a change of yardstick.
"""

from __future__ import annotations

import math
import subprocess
import time

import numpy as np
import torch
import torch.nn.functional as F

from ladder.analysis import figures
from ladder.data import tokens
from ladder.data.cloze import cloze_items
from ladder.data.sources import documents
from ladder.nn import device as dev
from ladder.nn.checkpoint import load_trained
from ladder.nn.loader import Concat, to_device, val_batches, verify, windows
from ladder.nn.model import GPT
from ladder.pipeline import paths, stamps
from ladder.pipeline.config import Data, Eval, Params, load
from ladder.pipeline.dag import params_of
from ladder.pipeline.files import atomic, need, read_json, sha256_file, write_json
from ladder.pipeline.progress import log, progress


def unigram_logprobs(index: dict) -> np.ndarray:
    """Add-one smoothed unigram log-probabilities (nats) from the train shards."""
    counts = np.ones(index["vocab_size"], dtype=np.float64)
    train = Concat("train", index)
    for part in train.parts:
        counts += np.bincount(part, minlength=len(counts))[: len(counts)]
    return np.log(counts / counts.sum())


@torch.no_grad()
def score(model: GPT, batches, nbytes: np.ndarray, uni: np.ndarray, device, dtype, desc: str) -> dict:
    """Loss, perplexity and bits per byte over (x, y) windows, with the unigram floor on the same tokens."""
    nats = uni_nats = 0.0
    n_tok = n_bytes = 0
    batches = list(batches)  # a few MB of token ids: counted first, so the bar has an ETA
    for x, y in progress(len(batches), desc=desc, unit="batch", iterable=batches):
        with dev.autocast(device, dtype):
            logits, _ = model(to_device(x, device))
        loss = F.cross_entropy(logits.float().flatten(0, 1), to_device(y, device).flatten(), reduction="none").cpu()
        yb = nbytes[y.flatten().numpy()]
        keep = torch.from_numpy(yb > 0)
        nats += loss[keep].sum().item()
        uni_nats += -uni[y.flatten().numpy()[yb > 0]].sum()
        n_tok += int(keep.sum())
        n_bytes += int(yb.sum())
    loss = nats / n_tok
    return {
        "loss": round(loss, 5),
        "perplexity": round(math.exp(loss), 3),
        "bits_per_byte": round(nats / math.log(2) / n_bytes, 5),
        "unigram_bits_per_byte": round(uni_nats / math.log(2) / n_bytes, 5),
        "tokens_scored": n_tok,
        "bytes_scored": n_bytes,
    }


def extra_set(path: str, tok, eot: int, rows: int, seq_len: int, max_tokens: int, data: Data):
    """Windows over a held-out text file, read like a corpus and tokenized like the shards."""
    docs, _ = documents(data.model_copy(update={"source": path, "format": "auto", "txt_split": "blank_line"}))
    ids = np.array([i for text, _ in docs for i in [eot, *tok.encode(text).ids]], dtype=np.int64)
    return windows(lambda a, n: ids[a : a + n], len(ids), rows, seq_len, max_tokens, what=path)


@torch.no_grad()
def cloze(model: GPT, tok, items: list[dict], nbytes: np.ndarray, device, dtype, desc: str) -> dict:
    """Accuracy of choosing the continuation with the highest log-likelihood per byte."""
    correct, block = 0, model.config.block_size
    for item in progress(len(items), desc=desc, unit="item", iterable=items):
        ctx = tok.encode(item["context"]).ids
        scores = []
        for choice in item["choices"]:
            cont = tok.encode(" " + choice).ids[: block // 2]
            ids = ctx[-(block + 1 - len(cont)) :] + cont
            x = torch.tensor([ids[:-1]], device=device)
            with dev.autocast(device, dtype):
                logits, _ = model(x)
            logp = torch.log_softmax(logits.float()[0, -len(cont) :], dim=-1)
            target = torch.tensor(ids[-len(cont) :], device=device)
            scores.append(logp.gather(1, target[:, None]).sum().item() / max(1, int(nbytes[cont].sum())))
        correct += int(np.argmax(scores) == item["answer"])
    n = len(items)
    return {
        "items": n,
        "choices": len(items[0]["choices"]) if n else 0,
        "accuracy": round(correct / n, 4) if n else None,
        "chance": round(1 / len(items[0]["choices"]), 4) if n else None,
    }


def samples(model: GPT, tok, cfg: Eval, seed: int, device) -> list[dict]:
    out = []
    for prompt in cfg.prompts:
        ids = torch.tensor([tok.encode(prompt).ids], device=device)
        for mode, temperature in (("greedy", 0.0), ("sampled", cfg.temperature)):
            gen = torch.Generator(device=device).manual_seed(seed)
            new = [
                t.item()
                for t in model.generate(
                    ids, cfg.max_new_tokens, temperature=temperature, top_k=cfg.top_k, top_p=cfg.top_p, generator=gen
                )
            ]
            out.append({"prompt": prompt, "mode": mode, "text": prompt + tok.decode(new)})
    return out


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def scored(prediction: dict, train: dict) -> dict:
    """The prediction against what training reached, and whether it was written before training began."""
    actual = train["final_val_loss"]
    lo, hi = prediction["interval"]
    return {k: v for k, v in prediction.items() if k != "built_from"} | {
        "actual_val_loss": actual,
        "error": round(actual / prediction["predicted_val_loss"] - 1, 5),
        "inside_interval": lo <= actual <= hi,
        "written_before_training": train.get("started_at") is not None
        and prediction["written_at"] < train["started_at"],
    }


def run(params: Params, size: str) -> dict:
    cfg = params.eval
    device = dev.pick()
    dev.setup(device)
    t0 = time.time()
    index = verify()
    tok = tokens.load()
    model = load_trained(size, device)
    train = read_json(paths.RunFiles(size).summary)
    curves = figures.curves([paths.RunFiles(size)])
    prediction = scored(
        read_json(need(paths.RunFiles(size).prediction, f"the prediction for {size} (stage predict@{size})")), train
    )
    dtype = dev.precision(device, train["dtype"])
    nbytes, uni, rows, seq_len = (
        tokens.token_bytes(tok),
        unigram_logprobs(index),
        train["micro_batch"],
        model.config.block_size,
    )
    val = score(
        model, val_batches(index, rows, seq_len, cfg.max_tokens), nbytes, uni, device, dtype, f"eval@{size} val"
    )
    extra = {
        name: score(
            model,
            extra_set(path, tok, index["eot_id"], rows, seq_len, cfg.max_tokens, params.data),
            nbytes,
            uni,
            device,
            dtype,
            f"eval@{size} {name}",
        )
        for name, path in cfg.extra.items()
    }
    quiz = cloze(model, tok, cloze_items(cfg, params.seed), nbytes, device, dtype, f"eval@{size} cloze")
    generated = samples(model, tok, cfg, params.seed, device)
    metrics = {  # what people compare across sizes and experiments, nothing more
        "val_loss": val["loss"],
        "val_bits_per_byte": val["bits_per_byte"],
        "cloze": quiz["accuracy"],
        "tokens_trained": train["tokens"],
        "train_seconds": train["train_seconds"],
        "predicted_val_loss": prediction["predicted_val_loss"],
        "prediction_error": prediction["error"],  # (reached / predicted) - 1
    }
    provenance = {
        "size": size,
        "val": val,
        "extra": extra,
        "cloze": quiz,
        "prediction": prediction,
        "params": train["params"],
        "params_non_embedding": train["params_non_embedding"],
        "train_tokens_per_s": train["tokens_per_s"],
        "train_flops_6nd": 6 * train["params"] * train["tokens"],
        "train_flops": model.flops_per_token(seq_len) * train["tokens"],  # matmuls incl. lm_head + attention
        "eval_seconds": round(time.time() - t0, 2),
        "samples": generated,
        "git_commit": git_commit(),
        "data_sha256": sha256_file(paths.SHARD_INDEX),
        "params_used": train["params_used"] | params_of(params, "eval", size),
        "built_from": stamps.stamp(params, "eval", size),
    }
    out = paths.RunFiles(size)
    md = [f"# Samples from {size}\n"] + [f"## {s['mode']}: {s['prompt']!r}\n\n{s['text']}\n" for s in generated]
    with atomic(out.eval, out.provenance, out.samples, out.figure) as (tmp_eval, tmp_provenance, tmp_md, tmp_png):
        write_json(tmp_eval, metrics)
        write_json(tmp_provenance, provenance)
        tmp_md.write_text("\n".join(md))
        figures.draw(curves, tmp_png, f"{size}: loss against tokens ({train['tokens']:,} trained)", prediction)
    log.info(
        "eval@%s: val loss %.4f, %.4f bits/byte (unigram %.4f), perplexity %.1f, cloze %s (chance %s)",
        size,
        val["loss"],
        val["bits_per_byte"],
        val["unigram_bits_per_byte"],
        val["perplexity"],
        quiz["accuracy"],
        quiz["chance"],
    )
    log.info(
        "eval@%s: predicted %.4f [%.4f, %.4f], reached %.4f in training (%+.2f%%%s)",
        size,
        prediction["predicted_val_loss"],
        *prediction["interval"],
        prediction["actual_val_loss"],
        100 * prediction["error"],
        "" if prediction["inside_interval"] else ", outside the interval",
    )
    return metrics


def add_arguments(p) -> None:
    p.add_argument("--size", required=True, help="a trained size (reads results/<size>/; params: seed, eval.*)")


def main(args) -> None:
    run(load(args.params), args.size)
