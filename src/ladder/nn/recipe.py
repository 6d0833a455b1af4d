"""The training recipe, written once: the model a size builds, its token budget and learning-rate
schedule, its optimizer and one optimizer step.

The train stage, `ladder sanity`, `ladder coord-check` and bench/throughput.py all train through
these functions, so what they measure is what the pipeline runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from ladder.nn import device as dev
from ladder.nn import distributed
from ladder.nn.model import GPT, GPTConfig
from ladder.nn.muon import Muon
from ladder.pipeline.config import Params, Train


def model_config(params: Params, size: str, vocab_size: int) -> GPTConfig:
    s, t = params.size(size), params.train_for(size)
    return GPTConfig(
        vocab_size=vocab_size,
        block_size=t.seq_len,
        n_layer=s.n_layer,
        n_head=s.n_head,
        n_embd=s.n_embd,
        tie_weights=t.tie_weights,
        mup=t.mup,
        mup_base_width=t.mup_base_width,
        mup_base_head_dim=t.mup_base_head_dim,
        completep=t.completep,
        mup_base_depth=t.mup_base_depth,
        checkpoint_activations=t.activation_checkpointing,
        fp32_residual=t.fp32_residual,
    )


def token_budget(t: Train, model: GPT) -> int:
    """Explicit `tokens`; else `flops` over the model's training FLOPs per token; else `tokens_per_param`
    x total parameters (Chinchilla: 20)."""
    if t.tokens:
        return t.tokens
    if t.flops:
        return int(t.flops / model.flops_per_token(t.seq_len))
    return int(t.tokens_per_param * model.num_params(non_embedding=False))


def steps(t: Train, model: GPT) -> int:
    """Optimizer steps to cover the token budget: the tokens a run sees are steps x batch_tokens."""
    return max(1, math.ceil(token_budget(t, model) / t.batch_tokens))


def schedule(t: Train, steps: int) -> Callable[[int], float]:
    """LR multiplier per step: linear warm-up, then cosine decay or warmup-stable-decay (WSD)."""
    warm = int(t.warmup_frac * steps)

    def at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if t.schedule == "cosine":
            done = (step - warm) / max(1, steps - warm)
            return t.min_lr_frac + (1 - t.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * done))
        decay_start = steps - int(t.decay_frac * steps)
        if step < decay_start:
            return 1.0
        return 1 - (1 - t.min_lr_frac) * (step - decay_start + 1) / max(1, steps - decay_start)

    return at


def phases(warmup: list[dict], t: Train, budget: int) -> list[tuple[int, int]]:
    """(seq_len, last token) per curriculum phase; the remainder runs at train.seq_len."""
    out, used = [], 0.0
    for p in warmup:
        used += p["share"]
        out.append((p["seq_len"], int(used * budget)))
    out.append((t.seq_len, budget))
    return out


def optimizer(model: GPT, lr: float, t: Train, device: torch.device) -> list[torch.optim.Optimizer]:
    """The optimizers of a step: AdamW over every group (train.optimizer: adamw), or Muon over the
    hidden matrices and AdamW over the rest (muon, as in modded-nanogpt and nanochat). Muon's update
    is sized by torch's "match_rms_adamw" rule (nn/muon.py), so one `lr` serves both. Built after the model is
    wrapped for data parallelism, so FSDP's sharded parameters are the ones optimized."""
    cfg = model.config
    eps = t.adam_eps / (cfg.width_mult * cfg.depth_mult) if cfg.completep else t.adam_eps  # CompleteP's eps rule
    groups = model.param_groups(t.weight_decay, t.optimizer)
    opts = []
    if t.optimizer == "muon":
        matrices = [g for g in groups if g["name"] == "hidden"]
        groups = [g for g in groups if g["name"] != "hidden"]
        opts.append(Muon(matrices, lr=lr, momentum=t.muon_momentum))
    opts.insert(0, torch.optim.AdamW(groups, lr=lr, betas=(t.beta1, t.beta2), eps=eps, fused=device.type == "cuda"))
    set_lr(opts, lr)
    return opts


def set_lr(opts: list[torch.optim.Optimizer], lr: float) -> None:
    """The base learning rate, times each group's μP scale."""
    for opt in opts:
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)


def step(
    model: GPT,
    forward,
    opts: list[torch.optim.Optimizer],
    scaler: torch.amp.GradScaler,
    batches: Iterable,
    accum: int,
    t: Train,
    device: torch.device,
    dtype: str,
    inspect: Callable[[], None] | None = None,
    wrapped: torch.nn.Module | None = None,
):
    """One optimizer step: forward and backward over `accum` micro-batches, unscale, clip, update.

    `forward` is the model, its data-parallel `wrapped` module, or a compiled wrapper of either;
    `batches` yields `accum` (x, y) pairs on the device, and the loss is their mean (across ranks,
    the gradients are averaged by the data-parallel wrapper, once, after the last micro-batch).
    `inspect` runs after clipping, while the gradients are still there. Returns (mean loss,
    gradient norm) as tensors, without waiting for the device.
    """
    loss_sum = torch.zeros((), device=device)
    for i, (x, y) in enumerate(batches):
        with distributed.accumulating(model if wrapped is None else wrapped, last=i == accum - 1):
            with dev.autocast(device, dtype):
                _, loss = forward(x, y)
            scaler.scale(loss / accum).backward()
        loss_sum += loss.detach()
    grad_norm = update(model, opts, scaler, t, inspect)
    for opt in opts:
        opt.zero_grad(set_to_none=True)
    return loss_sum / accum, grad_norm


def update(
    model: GPT,
    opts: list[torch.optim.Optimizer],
    scaler: torch.amp.GradScaler,
    t: Train,
    inspect: Callable[[], None] | None = None,
):
    """The step's update from the gradients backward left: unscale, clip, every optimizer's step.
    Apart from `step` so that bench/throughput.py can time the optimizer's share of a step."""
    for opt in opts:
        scaler.unscale_(opt)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip or float("inf"))
    if hasattr(grad_norm, "full_tensor"):  # FSDP: the norm over every shard
        grad_norm = grad_norm.full_tensor()
    if inspect is not None:
        inspect()
    for opt in opts:
        scaler.step(opt)
    scaler.update()
    return grad_norm
