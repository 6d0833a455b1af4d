"""Stage 7, eval@size: how good is the trained model, in numbers comparable across the ladder.

Bits per byte is the headline: loss summed over the val tokens, in bits, over the UTF-8 bytes those
tokens stand for, so it compares across tokenizers. Special tokens are left out of both sums. A
unigram model fitted to the train shards is scored on the same tokens as the floor any trained
model must clear.
"""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_model

from ladder import device as dev
from ladder.config import Eval, Params, stage_params
from ladder.files import atomic, log, need, read_json, sha256_file, write_json
from ladder.loader import Concat, to_device, val_batches, verify
from ladder.model import GPT, GPTConfig
from ladder.shard import INDEX
from ladder.tokenizer import OUT as TOKENIZER, load as load_tokenizer
from ladder.train import outputs as train_outputs


def outputs(size: str) -> dict[str, Path]:
    d = Path("results") / size
    return {"eval": d / "eval.json", "samples": d / "samples.md"}


def token_bytes(tok) -> np.ndarray:
    """UTF-8 bytes each token id stands for (0 for special tokens).

    Byte-level BPE maps each byte to one printable character, so a token's length in characters
    is its length in bytes.
    """
    vocab = tok.get_vocab_size()
    specials = {t.content for t in tok.get_added_tokens_decoder().values()}
    out = np.zeros(vocab, dtype=np.int64)
    for i in range(vocab):
        piece = tok.id_to_token(i)
        out[i] = 0 if piece in specials else len(piece)
    return out


def load_trained(size: str, device: torch.device) -> GPT:
    paths = train_outputs(size)
    cfg = GPTConfig(**read_json(need(paths["config"], f"config of size {size}")))
    model = GPT(cfg)
    load_model(model, str(need(paths["model"], f"weights of size {size}")))
    return model.to(device).eval()


def unigram_logprobs(index: dict) -> np.ndarray:
    """Add-one smoothed unigram log-probabilities (nats) from the train shards."""
    counts = np.ones(index["vocab_size"], dtype=np.float64)
    train = Concat("train", index)
    for part in train.parts:
        counts += np.bincount(part, minlength=len(counts))[: len(counts)]
    return np.log(counts / counts.sum())


@torch.no_grad()
def score(model: GPT, index: dict, cfg: Eval, nbytes: np.ndarray, rows: int, device, dtype) -> dict:
    seq_len = model.config.block_size
    uni = unigram_logprobs(index)
    nats = uni_nats = 0.0
    n_tok = n_bytes = 0
    for x, y in val_batches(index, rows, seq_len, cfg.max_tokens):
        with dev.autocast(device, dtype):
            logits, _ = model(to_device(x, device))
        loss = F.cross_entropy(logits.float().flatten(0, 1), to_device(y, device).flatten(), reduction="none").cpu()
        yb = nbytes[y.flatten().numpy()]
        keep = torch.from_numpy(yb > 0)
        nats += loss[keep].sum().item()
        uni_nats += -uni[y.flatten().numpy()[yb > 0]].sum()
        n_tok += int(keep.sum())
        n_bytes += int(yb.sum())
    val_loss = nats / n_tok
    return {
        "val_loss": round(val_loss, 5),
        "val_perplexity": round(math.exp(val_loss), 3),
        "val_bits_per_byte": round(nats / math.log(2) / n_bytes, 5),
        "unigram_bits_per_byte": round(uni_nats / math.log(2) / n_bytes, 5),
        "val_tokens_scored": n_tok,
        "val_bytes_scored": n_bytes,
    }


def samples(model: GPT, tok, cfg: Eval, seed: int, device) -> list[dict]:
    out = []
    for prompt in cfg.prompts:
        ids = torch.tensor([tok.encode(prompt).ids], device=device)
        for mode, temperature in (("greedy", 0.0), ("sampled", cfg.temperature)):
            gen = torch.Generator(device=device).manual_seed(seed)
            new = [t.item() for t in model.generate(ids, cfg.max_new_tokens, temperature=temperature,
                                                    top_k=cfg.top_k, top_p=cfg.top_p, generator=gen)]
            out.append({"prompt": prompt, "mode": mode, "text": prompt + tok.decode(new)})
    return out


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def run(params: Params, size: str) -> dict:
    cfg = params.eval
    device = dev.pick()
    dev.setup(device)
    t0 = time.time()
    index = verify()
    tok = load_tokenizer(TOKENIZER)
    model = load_trained(size, device)
    train = read_json(train_outputs(size)["summary"])
    dtype = dev.precision(device, train["dtype"])
    result = {"size": size} | score(model, index, cfg, token_bytes(tok), train["micro_batch"], device, dtype)
    generated = samples(model, tok, cfg, params.seed, device)
    result |= {
        "params": train["params"],
        "params_non_embedding": train["params_non_embedding"],
        "tokens_trained": train["tokens"],
        "train_flops_6nd": 6 * train["params"] * train["tokens"],
        "train_seconds": train["train_seconds"],
        "train_tokens_per_s": train["tokens_per_s"],
        "eval_seconds": round(time.time() - t0, 2),
        "samples": generated,
        "git_commit": git_commit(),
        "data_sha256": sha256_file(INDEX),
        "params_used": train["params_used"] | stage_params(params, "eval", size),
    }
    out = outputs(size)
    md = [f"# Samples from {size}\n"] + [f"## {s['mode']}: {s['prompt']!r}\n\n{s['text']}\n" for s in generated]
    with atomic(out["eval"], out["samples"]) as (tmp_eval, tmp_md):
        write_json(tmp_eval, result)
        tmp_md.write_text("\n".join(md))
    log.info("eval@%s: val loss %.4f, %.4f bits/byte (unigram %.4f), perplexity %.1f", size, result["val_loss"],
             result["val_bits_per_byte"], result["unigram_bits_per_byte"], result["val_perplexity"])
    return result
