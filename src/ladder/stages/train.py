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

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_model

from ladder.nn import checkpoint, cost, distributed, recipe
from ladder.pipeline import paths, stamps
from ladder.nn import device as dev
from ladder.nn.distributed import World
from ladder.pipeline.config import Params, load
from ladder.pipeline.dag import STAGES, folder, params_of
from ladder.pipeline.files import LadderError, atomic, need, read_json, sha256_file, write_json
from ladder.nn.loader import TrainStream, to_device, val_batches, verify
from ladder.nn.model import GPT
from ladder.pipeline.progress import log, progress

LAYER_STATS = ["tokens", "layer", "kind", "rms", "max", "near_zero"]


def fingerprint(params: Params, size: str) -> str:
    """Everything that shapes the run; a checkpoint with another fingerprint is not resumed."""
    h = hashlib.sha256(json.dumps(params_of(params, "train", size), sort_keys=True).encode())
    plan = paths.Plan(params.plan_for(size))
    for f in (paths.SHARD_INDEX, plan.plan, plan.order):
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def full(t: torch.Tensor) -> torch.Tensor:
    """A tensor whole: FSDP's shards gathered (every rank must call it)."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def layer_stats(model: GPT, x: torch.Tensor, device, dtype) -> list[dict]:
    """Per block: RMS, max |value| and share of near-zero entries (below 1% of the RMS) of its output
    activations on `x` and of its weights' current gradients. Drifting scales and dying units show
    here long before the loss says anything."""
    acts: dict[int, torch.Tensor] = {}
    hooks = [block.register_forward_hook(lambda m, i, out, k=k: acts.__setitem__(k, out.detach()))
             for k, block in enumerate(model.layers)]
    with torch.no_grad(), dev.autocast(device, dtype):
        model(x)
    distributed.reshard(model)
    for h in hooks:
        h.remove()
    rows = []
    for k, block in enumerate(model.layers):
        grads = [full(p.grad).flatten() for p in block.parameters() if p.grad is not None]
        for kind, t in (("activation", acts[k]), ("gradient", torch.cat(grads) if grads else None)):
            if t is None:
                continue
            t = t.float()
            rms = t.pow(2).mean().sqrt()
            stats = {"rms": rms.item(), "max": t.abs().max().item(), "near_zero": (t.abs() < 0.01 * rms).float().mean().item()}
            # an overflowing fp16 step (skipped by the scaler) has infinite gradients: no statistic, not a NaN in JSON
            rows.append({"layer": k, "kind": kind, **{s: v if math.isfinite(v) else None for s, v in stats.items()}})
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
    distributed.reshard(model)
    model.train(was_training)
    return total / n




class Diverged(LadderError):
    """Training produced a non-finite loss; nothing of the run is written."""


def run(params: Params, size: str, stage: str = "train") -> dict:
    """Train one size, one sweep cell or one scaling rung (stages "cell" and "rung": their params are
    built from their names, see Params.derived); under torchrun, every rank runs this (nn/distributed.py)."""
    built_from = stamps.stamp(params, stage, size)
    params = params.derived(stage, size)
    out = folder(stage, size)
    t = params.train_for(size)
    device = dev.pick()
    world = distributed.start(device.type)
    if world.main:
        cost.check(params, size)
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    dev.setup(device)
    dtype = dev.precision(device, t.dtype)
    index = verify()
    plan = paths.Plan(params.plan_for(size))
    staging = read_json(need(plan.plan, f"curriculum plan ({plan.name})"))
    stream = TrainStream(index, np.load(need(plan.order, f"curriculum order ({plan.name})")))

    torch.manual_seed(params.seed)
    cfg = recipe.model_config(params, size, index["vocab_size"])
    model = GPT(cfg).to(device)
    n_params = model.num_params(non_embedding=False)
    steps = recipe.steps(t, model)
    if stage == "rung" and steps * t.batch_tokens > index["train"]["tokens"]:
        raise LadderError(f"scaling.budgets: rung {size} would see {steps * t.batch_tokens:,} tokens, more than the "
                          f"train split's {index['train']['tokens']:,}; rungs stay within one epoch (the fit has no "
                          "term for repeated data): lower the budget")
    micro_tokens = t.micro_batch * t.seq_len
    accum = t.batch_tokens // micro_tokens  # micro-batches per step, all ranks together
    plan_phases = recipe.phases(staging["warmup"], t, steps * t.batch_tokens)
    lr_at = recipe.schedule(t, steps)

    use_compile = t.compile == "on" or (t.compile == "auto" and device.type == "cuda")
    fwd, wrapped = distributed.prepare(model, t.parallel, world, device, use_compile)
    opts = recipe.optimizer(model, params.lr, t, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == "fp16")
    fp = fingerprint(params, size)
    state = checkpoint.load(out.ckpt, model, opts, scaler, fp, world) or {
        "fingerprint": fp, "step": 0, "pos": 0, "history": [], "layer_stats": [], "train_seconds": 0.0,
        "started_at": time.time()}
    if state["step"] and world.main:
        log.info("train@%s: resuming from step %d of %d", size, state["step"], steps)
    flops_per_token = model.flops_per_token(t.seq_len)
    peak = dev.peak_flops(device, dtype)
    ceiling = math.log(cfg.vocab_size) + 1.0  # a loss above this after warm-up is worse than guessing

    if world.main:
        log.info("train@%s: %.2fM params, %d tokens in %d steps of %d tokens (%d x %d micro-batches), %s on %s%s",
                 size, n_params / 1e6, steps * t.batch_tokens, steps, t.batch_tokens, accum, t.micro_batch, dtype,
                 device, f" x {world.size} ({t.parallel})" if world.group else "")
    live = open_curves(out, state) if world.main else None

    def check_finite(loss: torch.Tensor | float, step: int, what: str = "loss") -> None:
        if not math.isfinite(float(loss)):
            raise Diverged(f"train@{size}: {what} is {float(loss)} at step {step} of {steps}; no model or result was written. "
                           f"Lower lr ({params.lr:g}), set train.grad_clip, or use train.dtype: bf16 or fp32")

    model.train()
    t0, last_t, last_tokens = time.time(), time.time(), state["step"] * t.batch_tokens
    previous = None  # (loss, step) of the step before, checked once this step is queued: no stall
    bar = progress(steps, desc=f"train@{size}", unit="step", initial=state["step"], quiet=not world.main)
    diverged = None  # a sweep cell that diverges is a result (its lr is too high), not a failure
    try:
        for step in range(state["step"], steps):
            seq_len = next(L for L, end in plan_phases if step * t.batch_tokens < end)
            rows = micro_tokens // seq_len
            lr = params.lr * lr_at(step)
            recipe.set_lr(opts, lr)
            log_now = (step + 1) % t.log_every == 0 or step + 1 == steps

            micro = [stream.batch(state["pos"] + j * rows * seq_len, rows, seq_len)  # this rank's share
                     for j in range(world.rank, accum, world.size)]
            state["pos"] += accum * rows * seq_len

            def inspect():
                stats = [{"tokens": (step + 1) * t.batch_tokens, **r}
                         for r in layer_stats(model, to_device(micro[-1][0], device), device, dtype)]
                state["layer_stats"] += stats
                if world.main:
                    pd.DataFrame(stats, columns=LAYER_STATS).to_csv(out.layer_stats, sep="\t", index=False, mode="a",
                                                                   header=False)

            on_device = ((to_device(x, device), to_device(y, device)) for x, y in micro)
            loss, grad_norm = recipe.step(model, fwd, opts, scaler, on_device, len(micro), t, device, dtype,
                                          inspect if log_now else None, wrapped)
            if world.size > 1 and (log_now or (step + 1) % t.checkpoint_every == 0):
                loss = distributed.mean(loss, world)  # the loss of the whole batch, checked on every rank alike
            elif world.size == 1 and previous is not None:
                check_finite(*previous)
            previous = (loss, step + 1)
            state["step"] = step + 1
            bar.update(1)

            done = state["step"] == steps
            if log_now:
                check_finite(loss, state["step"])
                dev.sync(device)
                now, tokens = time.time(), state["step"] * t.batch_tokens
                rate = (tokens - last_tokens) / max(now - last_t, 1e-9)
                last_t, last_tokens = now, tokens
                metrics = {"loss": round(loss.item(), 5), "lr": lr, "tokens_per_s": round(rate, 1),
                           "seconds": round(state["train_seconds"] + now - t0, 2)}  # wall time so far: time to a loss
                if math.isfinite(norm := grad_norm.item()):  # fp16: an overflowing step is skipped, its norm inf
                    metrics["grad_norm"] = round(norm, 5)
                if peak:
                    metrics["mfu"] = round(rate * flops_per_token / peak, 4)
                if state["step"] % t.eval_every == 0 or done:
                    metrics["val_loss"] = round(evaluate_loss(model, index, t.seq_len, t.micro_batch, t.eval_tokens,
                                                              device, dtype), 5)
                    check_finite(metrics["val_loss"], state["step"], "val loss")
                if step >= int(t.warmup_frac * steps) and metrics["loss"] > ceiling:
                    log.info("train@%s: warning: loss %.2f at step %d is above ln(vocab) + 1 = %.2f: the run "
                             "is diverging (lower lr, or check train.grad_clip)", size, metrics["loss"],
                             state["step"], ceiling)
                if world.main:
                    log_metrics(live, tokens, metrics)
                state["history"].append([tokens, metrics])
                bar.set_postfix({k: metrics[k] for k in ("loss", "tokens_per_s", "mfu") if k in metrics})
            if state["step"] % t.checkpoint_every == 0 and not done:
                check_finite(loss, state["step"])
                state["train_seconds"] += time.time() - t0
                t0 = time.time()
                checkpoint.save(out.ckpt, model, opts, scaler, state, world)
    except Diverged as e:
        if stage != "cell":  # a size or rung that diverges has no loss to report: the recipe failed
            raise
        diverged = str(e)
        log.info("%s", diverged)
    bar.close()
    state["train_seconds"] += time.time() - t0
    summary = write_results(params, size, out, built_from, model, opts, scaler, state, steps, plan.name, staging,
                            plan_phases, device, dtype, world, stage, diverged)
    distributed.stop(world)
    if not world.main:
        return summary
    live.end()
    log.info("%s@%s: done, loss %s, val loss %s, %.0f tokens/s", stage, size, summary["final_loss"],
             summary["final_val_loss"], summary["tokens_per_s"])
    return summary


def open_curves(out: paths.Size, state: dict):
    """dvclive's curves (the token count as the step), with the run before a resume replayed into them,
    and a fresh layer_stats.tsv holding that run's rows."""
    from dvclive import Live

    live = Live(str(out.live), dvcyaml=None, save_dvc_exp=False, report=None)
    for tokens, metrics in state["history"]:
        log_metrics(live, tokens, metrics)
    out.layer_stats.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(state["layer_stats"], columns=LAYER_STATS).to_csv(out.layer_stats, sep="\t", index=False)
    return live


def log_metrics(live, tokens: int, metrics: dict) -> None:
    live.step = tokens
    for k, v in metrics.items():
        live.log_metric(k, v)


def write_curve(path, metric: str, history: list) -> None:
    """One metric by tokens, a plot of the size's train stage in dvc.yaml: DVC cannot declare live/'s
    copy (a file inside an output) as one, and per-size plots list only the sizes that exist."""
    rows = [(tokens, m[metric]) for tokens, m in history if metric in m]
    pd.DataFrame(rows, columns=["tokens", metric]).to_csv(path, sep="\t", index=False)


def write_results(params: Params, size: str, out: paths.Size, built_from: dict, model: GPT, opts: list, scaler,
                  state: dict, steps: int, plan: str, staging: dict, plan_phases: list, device, dtype: str,
                  world: World, stage: str, diverged: str | None) -> dict:
    """The model, its config and train.json, atomically together (rank 0); then the final checkpoint.
    Every rank calls this: under FSDP the whole model is gathered first. A sweep cell or a rung keeps
    no model (its result is its loss), and a diverged cell neither its last state."""
    t = params.train_for(size)
    summary = {
        "size": size,
        "params": model.num_params(non_embedding=False),
        "params_non_embedding": model.num_params(non_embedding=True),
        "tokens": steps * t.batch_tokens,
        "flops": model.flops_per_token(t.seq_len) * steps * t.batch_tokens,  # nn/model.py's count
        "steps": steps,
        "micro_batch": t.micro_batch,
        "train_seconds": round(state["train_seconds"], 2),
        "started_at": state.get("started_at"),  # unix time of step 0 (a resumed run keeps its first start)
        "tokens_per_s": round(steps * t.batch_tokens / max(state["train_seconds"], 1e-9), 1),
        "final_loss": None if diverged else state["history"][-1][1]["loss"],
        "final_val_loss": None if diverged else state["history"][-1][1].get("val_loss"),
        "diverged": diverged,
        "device": str(device),
        "devices": world.size,
        "parallel": t.parallel if world.group else None,
        "dtype": dtype,
        "curriculum": {"plan": plan} | {k: v for k, v in staging.items() if k != "built_from"}
                      | {"phases": plan_phases},
        "params_used": params_of(params, "train", size),
        "lr": params.lr,
        "seed": params.seed,
        "built_from": built_from,
    }
    if stage != "train":
        if world.main:
            with atomic(out.config, out.summary) as (tmp_cfg, tmp_summary):
                write_json(tmp_cfg, dataclasses.asdict(model.config))
                write_json(tmp_summary, summary)
        if not diverged:
            checkpoint.save(out.ckpt, model, opts, scaler, state, world)
        return summary
    model_sd, _ = distributed.full_state(model, [], world)
    if world.main:
        plain = model
        if distributed.sharded(model):
            plain = GPT(model.config)
            plain.load_state_dict(model_sd)
        with atomic(out.model, out.config, out.summary, *out.curves.values()) as (tmp_model, tmp_cfg, tmp_summary,
                                                                                 *tmp_curves):
            save_model(plain, str(tmp_model))
            summary["model_sha256"] = sha256_file(tmp_model)
            write_json(tmp_cfg, dataclasses.asdict(model.config))
            write_json(tmp_summary, summary)
            for metric, tmp in zip(out.curves, tmp_curves):
                write_curve(tmp, metric, state["history"])
    checkpoint.save(out.ckpt, model, opts, scaler, state, world)
    return summary


def add_arguments(p) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--size", help="a size under sizes: in params.yaml; what shapes the run: seed, lr, "
                       "train.*, sizes.<size>.* and the plan pipeline.sizes names for it (default base)")
    which.add_argument("--cell", help="a cell of the learning-rate sweep, shape-parametrization-lr-seed "
                       "(e.g. w128-d4-mup-0.003-1); shaped by train.* and sweep.*, on the base plan")
    which.add_argument("--rung", help="a rung of the scaling ladder, shape-budget (e.g. w64-d2-131072); shaped by "
                       "seed, lr, train.* and scaling.*, on the base plan")


def main(args) -> None:
    params = load(args.params)
    stage, name, flag = next((s.name, name, s.per) for s in STAGES.values()
                             if s.command == "train" and (name := getattr(args, s.per)))
    t = params.derived(stage, name).train_for(name)
    distributed.relaunch(t.devices, ["train", f"--{flag}", name, "--params", args.params])
    run(params, name, stage)
