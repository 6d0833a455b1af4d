"""Stage 6, train@size: train one size of the ladder from the shards, following the curriculum.

Outputs in results/<size>/: model.safetensors and config.json (the model), train.json (what the
run did), live/ (dvclive metrics, with the token count as the step so curves of different sizes
share an x axis), and ckpt/ (the latest checkpoint, a persistent output). A checkpoint holds the
weights, optimizer and scaler state, the step and the data cursor, and a fingerprint of everything
that shaped the run; a rerun resumes from it only when the fingerprint matches, so a crash costs at
most `checkpoint_every` steps and a params change never resumes a stale run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_model, save_model

from ladder import device as dev, plan
from ladder.config import Params, Train, stage_params
from ladder.curriculum import plan_files
from ladder.files import LadderError, atomic, log, need, progress, read_json, sha256_file, write_json
from ladder.loader import TrainStream, to_device, val_batches, verify
from ladder.model import GPT, GPTConfig
from ladder.shard import INDEX

RESULTS = Path("results")
LAYER_STATS = ["tokens", "layer", "kind", "rms", "max", "near_zero"]


def outputs(size: str) -> dict[str, Path]:
    d = RESULTS / size
    return {"model": d / "model.safetensors", "config": d / "config.json", "summary": d / "train.json",
            "live": d / "live", "ckpt": d / "ckpt"}


def model_config(params: Params, size: str, vocab_size: int) -> GPTConfig:
    s, t = params.size(size), params.train_for(size)
    return GPTConfig(vocab_size=vocab_size, block_size=t.seq_len, n_layer=s.n_layer, n_head=s.n_head,
                     n_embd=s.n_embd, tie_weights=t.tie_weights, mup=t.mup, mup_base_width=t.mup_base_width,
                     mup_base_head_dim=t.mup_base_head_dim, checkpoint_activations=t.activation_checkpointing,
                     fp32_residual=t.fp32_residual)


def token_budget(t: Train, n_params: int) -> int:
    """Explicit `tokens`, else `tokens_per_param` x total parameters (Chinchilla: 20)."""
    return t.tokens or int(t.tokens_per_param * n_params)


def schedule(t: Train, steps: int):
    """LR multiplier per step: linear warm-up, then cosine decay or warmup-stable-decay (WSD)."""
    warm = int(t.warmup_frac * steps)

    def at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if t.schedule == "cosine":
            progress_ = (step - warm) / max(1, steps - warm)
            return t.min_lr_frac + (1 - t.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress_))
        decay_start = steps - int(t.decay_frac * steps)
        if step < decay_start:
            return 1.0
        return 1 - (1 - t.min_lr_frac) * (step - decay_start + 1) / max(1, steps - decay_start)

    return at


def phases(staging: dict, t: Train, budget: int) -> list[tuple[int, int]]:
    """(seq_len, last token) per curriculum phase; the remainder runs at train.seq_len."""
    out, used = [], 0.0
    for p in staging["warmup"]:
        if t.seq_len % p["seq_len"]:
            raise LadderError(f"curriculum.warmup: seq_len {p['seq_len']} must divide train.seq_len {t.seq_len}")
        used += p["share"]
        out.append((p["seq_len"], int(used * budget)))
    out.append((t.seq_len, budget))
    return out


def fingerprint(params: Params, size: str) -> str:
    """Everything that shapes the run; a checkpoint with another fingerprint is not resumed."""
    h = hashlib.sha256(json.dumps(stage_params(params, "train", size), sort_keys=True).encode())
    for f in (INDEX, *plan_files(params.plan_for(size))):
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def save_checkpoint(folder: Path, model, opt, scaler, state: dict) -> None:
    with atomic(folder) as (tmp,):
        tmp.mkdir()
        save_model(model, str(tmp / "model.safetensors"))
        rng = {"cpu": torch.get_rng_state()} | ({"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {})
        torch.save({"optimizer": opt.state_dict(), "scaler": scaler.state_dict(), "rng": rng}, tmp / "optim.pt")
        write_json(tmp / "state.json", state)


def load_checkpoint(folder: Path, model, opt, scaler, fp: str) -> dict | None:
    if not (folder / "state.json").exists():
        return None
    state = read_json(folder / "state.json")
    if state.get("fingerprint") != fp:
        log.info("train: ignoring checkpoint in %s (made with other params or data)", folder)
        return None
    load_model(model, str(folder / "model.safetensors"))
    extra = torch.load(folder / "optim.pt", weights_only=True)
    opt.load_state_dict(extra["optimizer"])
    scaler.load_state_dict(extra["scaler"])
    torch.set_rng_state(extra["rng"]["cpu"])
    if "cuda" in extra["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(extra["rng"]["cuda"])
    return state


def layer_stats(model: GPT, x: torch.Tensor, device, dtype) -> list[dict]:
    """Per block: RMS, max |value| and share of near-zero entries (below 1% of the RMS) of its output
    activations on `x` and of its weights' current gradients. Drifting scales and dying units show
    here long before the loss says anything."""
    acts: dict[int, torch.Tensor] = {}
    hooks = [block.register_forward_hook(lambda m, i, out, k=k: acts.__setitem__(k, out.detach()))
             for k, block in enumerate(model.layers)]
    with torch.no_grad(), dev.autocast(device, dtype):
        model(x)
    for h in hooks:
        h.remove()
    rows = []
    for k, block in enumerate(model.layers):
        grads = [p.grad.flatten() for p in block.parameters() if p.grad is not None]
        for kind, t in (("activation", acts[k]), ("gradient", torch.cat(grads) if grads else None)):
            if t is None:
                continue
            t = t.float()
            rms = t.pow(2).mean().sqrt()
            rows.append({"layer": k, "kind": kind, "rms": rms.item(), "max": t.abs().max().item(),
                         "near_zero": (t.abs() < 0.01 * rms).float().mean().item()})
    return rows


@torch.no_grad()
def evaluate_loss(model, index: dict, seq_len: int, rows: int, max_tokens: int, device, dtype) -> float:
    """Mean next-token loss over the val split (up to max_tokens)."""
    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    for x, y in val_batches(index, rows, seq_len, max_tokens):
        with dev.autocast(device, dtype):
            _, loss = model(to_device(x, device), to_device(y, device))
        total += loss.item() * y.numel()
        n += y.numel()
    model.train(was_training)
    return total / n


def run(params: Params, size: str) -> dict:
    from dvclive import Live

    t = params.train_for(size)
    out = outputs(size)
    plan.check(params, size)
    device = dev.pick()
    dev.setup(device)
    dtype = dev.precision(device, t.dtype)
    index = verify()
    plan_name = params.plan_for(size)
    plan_json, order_npy = plan_files(plan_name)
    staging = read_json(need(plan_json, f"curriculum plan ({plan_name})"))
    stream = TrainStream(index, np.load(need(order_npy, f"curriculum order ({plan_name})")))

    torch.manual_seed(params.seed)
    cfg = model_config(params, size, index["vocab_size"])
    model = GPT(cfg).to(device)
    n_params = model.num_params(non_embedding=False)
    budget = token_budget(t, n_params)
    steps = max(1, math.ceil(budget / t.batch_tokens))
    micro_tokens = t.micro_batch * t.seq_len
    if t.batch_tokens % micro_tokens:
        raise LadderError(f"sizes.{size}: train.batch_tokens {t.batch_tokens} must be a multiple of "
                         f"micro_batch x seq_len = {micro_tokens}")
    accum = t.batch_tokens // micro_tokens
    plan_phases = phases(staging, t, steps * t.batch_tokens)
    lr_at = schedule(t, steps)

    opt = torch.optim.AdamW(model.param_groups(t.weight_decay), lr=params.lr, betas=(t.beta1, t.beta2),
                            fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == "fp16")
    fp = fingerprint(params, size)
    state = load_checkpoint(out["ckpt"], model, opt, scaler, fp) or {
        "fingerprint": fp, "step": 0, "pos": 0, "history": [], "layer_stats": [], "train_seconds": 0.0}
    if state["step"]:
        log.info("train@%s: resuming from step %d of %d", size, state["step"], steps)
    use_compile = t.compile == "on" or (t.compile == "auto" and device.type == "cuda")
    fwd = torch.compile(model) if use_compile else model
    flops_per_token = model.flops_per_token(t.seq_len)
    peak = dev.peak_flops(device, dtype)

    log.info("train@%s: %.2fM params, %d tokens in %d steps of %d tokens (%d x %d micro-batches), %s on %s",
             size, n_params / 1e6, steps * t.batch_tokens, steps, t.batch_tokens, accum, t.micro_batch, dtype, device)
    live = Live(str(out["live"]), dvcyaml=None, save_dvc_exp=False, report=None)
    for tokens, metrics in state["history"]:  # replay the curve of the run before the resume
        live.step = tokens
        for k, v in metrics.items():
            live.log_metric(k, v)
    stats_file = out["live"] / "layer_stats.tsv"
    stats_file.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(state["layer_stats"], columns=LAYER_STATS).to_csv(stats_file, sep="\t", index=False)

    model.train()
    t0, last_t, last_tokens = time.time(), time.time(), state["step"] * t.batch_tokens
    bar = progress(steps, desc=f"train@{size}", unit="step", initial=state["step"])
    for step in range(state["step"], steps):
        tokens_before = step * t.batch_tokens
        seq_len = next(L for L, end in plan_phases if tokens_before < end)
        rows = micro_tokens // seq_len
        lr = params.lr * lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        loss_sum = torch.zeros((), device=device)
        for _ in range(accum):
            x, y = stream.batch(state["pos"], rows, seq_len)
            state["pos"] += rows * seq_len
            with dev.autocast(device, dtype):
                _, loss = fwd(to_device(x, device), to_device(y, device))
            scaler.scale(loss / accum).backward()
            loss_sum += loss.detach()
        scaler.unscale_(opt)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip or float("inf"))
        if (step + 1) % t.log_every == 0 or step + 1 == steps:
            rows = [{"tokens": (step + 1) * t.batch_tokens, **r}
                    for r in layer_stats(model, to_device(x, device), device, dtype)]
            state["layer_stats"] += rows
            pd.DataFrame(rows, columns=LAYER_STATS).to_csv(stats_file, sep="\t", index=False, mode="a", header=False)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        state["step"] = step + 1
        bar.update(1)

        done = state["step"] == steps
        if state["step"] % t.log_every == 0 or done:
            dev.sync(device)
            now, tokens = time.time(), state["step"] * t.batch_tokens
            rate = (tokens - last_tokens) / max(now - last_t, 1e-9)
            last_t, last_tokens = now, tokens
            metrics = {"loss": round((loss_sum / accum).item(), 5), "lr": lr, "grad_norm": round(grad_norm.item(), 5),
                       "tokens_per_s": round(rate, 1)}
            if peak:
                metrics["mfu"] = round(rate * flops_per_token / peak, 4)
            if state["step"] % t.eval_every == 0 or done:
                metrics["val_loss"] = round(evaluate_loss(model, index, t.seq_len, t.micro_batch, t.eval_tokens,
                                                          device, dtype), 5)
            live.step = tokens
            for k, v in metrics.items():
                live.log_metric(k, v)
            state["history"].append([tokens, metrics])
            bar.set_postfix({k: metrics[k] for k in ("loss", "tokens_per_s", "mfu") if k in metrics})
        if state["step"] % t.checkpoint_every == 0 and not done:
            state["train_seconds"] += time.time() - t0
            t0 = time.time()
            save_checkpoint(out["ckpt"], model, opt, scaler, state)
    bar.close()
    state["train_seconds"] += time.time() - t0
    live.end()

    summary = {
        "size": size,
        "params": n_params,
        "params_non_embedding": model.num_params(non_embedding=True),
        "tokens": steps * t.batch_tokens,
        "steps": steps,
        "micro_batch": t.micro_batch,
        "train_seconds": round(state["train_seconds"], 2),
        "tokens_per_s": round(steps * t.batch_tokens / max(state["train_seconds"], 1e-9), 1),
        "final_loss": state["history"][-1][1]["loss"],
        "final_val_loss": state["history"][-1][1].get("val_loss"),
        "device": str(device),
        "dtype": dtype,
        "curriculum": {"plan": plan_name} | staging | {"phases": plan_phases},
        "params_used": stage_params(params, "train", size),
    }
    with atomic(out["model"], out["config"], out["summary"]) as (tmp_model, tmp_cfg, tmp_summary):
        save_model(model, str(tmp_model))
        summary["model_sha256"] = sha256_file(tmp_model)
        write_json(tmp_cfg, dataclasses.asdict(cfg))
        write_json(tmp_summary, summary)
    save_checkpoint(out["ckpt"], model, opt, scaler, state)
    log.info("train@%s: done, loss %.4f, val loss %s, %.0f tokens/s", size, summary["final_loss"],
             summary["final_val_loss"], summary["tokens_per_s"])
    return summary
