"""What each size costs before a GPU-hour is spent (`ladder plan` prints it).

For every size: parameters, FLOPs per token, the token budget, total FLOPs, the memory training
needs (weights, gradients, AdamW state, activations at the micro-batch, with and without activation
checkpointing) and the estimated wall time on this device and on common GPUs. The train stage
prints its own size's plan and refuses to start when the model cannot fit or the estimate exceeds
`train.max_hours`.

Estimates, stated so they can be checked: fp32 master weights, gradients and two AdamW moments
(16 bytes per parameter); activations per layer and token of about 34 x n_embd bytes in bf16
(Korthikanti et al. 2022, with flash attention so no T^2 term; doubled in fp32), plus the logits
(10 bytes per vocab entry per token); with checkpointing, only each block's input is kept
(2 x n_embd bytes; 4 in fp32 or with `train.fp32_residual`) plus one block's activations during
recompute. Wall time assumes 40% MFU on a GPU, and half the measured matmul rate on a CPU. With
`train.devices: N`, wall time is divided by N, and under `train.parallel: fsdp` so are the weights,
gradients and optimizer state held per device (the gathered block being computed is left out).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ladder.nn import device as dev
from ladder.nn.model import GPT, GPTConfig
from ladder.nn.recipe import model_config, token_budget
from ladder.pipeline.config import Params, Train
from ladder.pipeline.files import LadderError, read_json
from ladder.pipeline.paths import SHARD_INDEX, TOKENIZER
from ladder.pipeline.progress import log

GPU_MFU = 0.4
GiB = 1024**3


@dataclass
class Estimate:
    size: str
    params: int
    params_non_embedding: int
    flops_per_token: int
    tokens: int
    total_flops: float
    weights_optim_gib: float  # per device: divided over the devices under FSDP
    activations_gib: float
    activations_ckpt_gib: float
    devices: int

    def memory_gib(self, checkpointing: bool) -> float:
        return self.weights_optim_gib + (self.activations_ckpt_gib if checkpointing else self.activations_gib)


def vocab_size(params: Params) -> tuple[int, str]:
    """The vocabulary training will use, and where it was read from (params only before the data exists)."""
    if SHARD_INDEX.exists():
        return read_json(SHARD_INDEX)["vocab_size"], str(SHARD_INDEX)
    if TOKENIZER.exists():
        from ladder.data.tokens import load

        return load(TOKENIZER).get_vocab_size(), str(TOKENIZER)
    return params.tokenizer.vocab_size, "params.yaml (no tokenizer yet)"


def estimate(params: Params, size: str, vocab: int, fp32: bool = False) -> Estimate:
    t: Train = params.train_for(size)
    cfg: GPTConfig = model_config(params, size, vocab)
    with torch.device("meta"):
        model = GPT(cfg)
    n = model.num_params(non_embedding=False)
    tokens = token_budget(t, model)
    fpt = model.flops_per_token(t.seq_len)
    act_scale = 2 if fp32 else 1
    micro_tokens = t.micro_batch * t.seq_len
    per_layer = 34 * cfg.n_embd * micro_tokens * act_scale
    logits = 10 * vocab * micro_tokens
    act = cfg.n_layer * per_layer + logits
    resid_bytes = 4 if fp32 or t.fp32_residual else 2  # the residual stream each block takes in
    act_ckpt = cfg.n_layer * resid_bytes * cfg.n_embd * micro_tokens + per_layer + logits
    shards = t.devices if t.parallel == "fsdp" else 1  # DDP keeps a whole replica on every device
    return Estimate(
        size,
        n,
        model.num_params(non_embedding=True),
        fpt,
        tokens,
        float(fpt) * tokens,
        16 * n / shards / GiB,
        act / GiB,
        act_ckpt / GiB,
        t.devices,
    )


def measured_flops(device: torch.device) -> float:
    """Achieved matmul FLOP/s on this device, in the precision training would use."""
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    n = 1024 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    dev.sync(device)
    t0, reps = time.perf_counter(), 3
    for _ in range(reps):
        a @ b
    dev.sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def device_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory / GiB
    import psutil

    return psutil.virtual_memory().total / GiB


def this_device() -> tuple[str, float, float, bool]:
    """(name, sustained FLOP/s, memory GiB, fp32?) of the device training would use here."""
    device = dev.pick()
    dev.setup(device)
    if device.type == "cuda":
        dtype = dev.precision(device)
        peak = dev.peak_flops(device, dtype)
        rate = GPU_MFU * (peak or measured_flops(device))
        return torch.cuda.get_device_name(device), rate, device_memory_gib(device), dtype == "fp32"
    return "this CPU", 0.5 * measured_flops(device), device_memory_gib(device), True


def hours(e: Estimate, flops_per_s: float) -> float:
    """Wall time on e.devices devices of this rate (data parallelism assumed to scale linearly)."""
    return e.total_flops / (flops_per_s * e.devices) / 3600


def time_limit_minutes(params: Params, size: str, gpu: str = "H100", margin: float = 2.0) -> int:
    """A job time limit for a scheduler: `margin` x the estimate on train.devices GPUs of this kind,
    and never under 15 minutes (start-up, compilation, evaluation)."""
    e = estimate(params, size, vocab_size(params)[0])
    return max(15, math.ceil(60 * margin * hours(e, GPU_MFU * dev.GPUS[gpu][0])))


def table(params: Params, sizes: list[str]) -> str:
    vocab, _ = vocab_size(params)
    name, rate, mem, fp32 = this_device()
    gpus = {k: (GPU_MFU * flops, gib) for k, (flops, gib) in dev.GPUS.items()}
    header = (
        f"{'size':<8}{'params':>9}{'non-emb':>9}{'GFLOP/tok':>10}{'tokens':>9}{'PFLOP':>9}"
        f"{'mem GiB':>9}{'w/ ckpt':>9}  {'est. hours: ' + name:<24}" + "".join(f"{k:>11}" for k in gpus)
    )
    lines = [
        f"vocab {vocab}; memory per device = weights+grads+AdamW (divided over train.devices under fsdp) + "
        f"activations at the micro-batch (bf16; fp32 on {name}); hours on train.devices devices; '-' = does not "
        "fit even with activation checkpointing",
        header,
    ]
    for size in sizes:
        e = estimate(params, size, vocab)
        here = estimate(params, size, vocab, fp32=fp32)
        cells = []
        for flops, gib in [(rate, mem)] + list(gpus.values()):
            est = here if (flops, gib) == (rate, mem) else e
            cells.append(f"{hours(est, flops):.2f}" if est.memory_gib(True) <= gib else "-")
        lines.append(
            f"{size:<8}{e.params / 1e6:>8.1f}M{e.params_non_embedding / 1e6:>8.1f}M"
            f"{e.flops_per_token / 1e9:>10.2f}{e.tokens / 1e6:>8.2f}M{e.total_flops / 1e15:>9.2f}"
            f"{e.memory_gib(False):>9.2f}{e.memory_gib(True):>9.2f}  {cells[0]:<24}"
            + "".join(f"{c:>11}" for c in cells[1:])
        )
    return "\n".join(lines)


def check(params: Params, size: str) -> None:
    """Log the plan for one size; refuse when it cannot fit or would take longer than max_hours."""
    t = params.train_for(size)
    name, rate, mem, fp32 = this_device()
    e = estimate(params, size, vocab_size(params)[0], fp32=fp32)
    need = e.memory_gib(t.activation_checkpointing)
    est = hours(e, rate)
    log.info(
        "plan@%s: %.1fM params, %.1fM tokens, %.3g PFLOP, ~%.2f GiB of %.0f GiB per device, ~%.2f h on %d x %s",
        size,
        e.params / 1e6,
        e.tokens / 1e6,
        e.total_flops / 1e15,
        need,
        mem,
        est,
        e.devices,
        name,
    )
    if need > mem:
        hint = "lower train.micro_batch" + (
            "" if t.activation_checkpointing else " or set train.activation_checkpointing: true"
        )
        raise LadderError(f"sizes.{size}: needs ~{need:.1f} GiB but {name} has {mem:.0f} GiB; {hint}")
    if est > t.max_hours:
        raise LadderError(
            f"sizes.{size}: estimated {est:.1f} h on {name} exceeds train.max_hours={t.max_hours:g}; "
            "lower the token budget (train.tokens / tokens_per_param) or raise max_hours"
        )
