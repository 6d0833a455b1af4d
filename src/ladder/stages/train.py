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
import os
import sqlite3
import time

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import save_model

from ladder.nn import checkpoint, cost, distributed, recipe
from ladder.nn import device as dev
from ladder.nn.loader import TrainStream, check_windows, to_device, val_batches, verify
from ladder.nn.model import GPT
from ladder.pipeline import paths, stamps
from ladder.pipeline.config import Params, load
from ladder.pipeline.dag import STAGES, folder, params_of
from ladder.pipeline.files import (
    LadderError,
    atomic,
    need,
    open_owned,
    read_json,
    remove,
    sha256_file,
    write_json,
    written,
)
from ladder.pipeline.progress import log, progress

LAYER_STATS = ["tokens", "layer", "kind", "rms", "max", "near_zero"]


def fingerprint(params: Params, name: str) -> str:
    """Everything that shapes the run; a checkpoint with another fingerprint is not resumed."""
    h = hashlib.sha256(json.dumps(params_of(params, "train", name), sort_keys=True).encode())
    plan = paths.PlanFiles(params.plan_for(name))
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
    hooks = [
        block.register_forward_hook(lambda m, i, out, k=k: acts.__setitem__(k, out.detach()))
        for k, block in enumerate(model.layers)
    ]
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
            stats = {
                "rms": rms.item(),
                "max": t.abs().max().item(),
                "near_zero": (t.abs() < 0.01 * rms).float().mean().item(),
            }
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


class Training:
    """One run of the train stage: `build` it, `resume` it, `train` it (a `step` at a time, with
    `evaluate` and `checkpoint` between steps), then `finish` it (`write` the outputs).

    Under torchrun every rank builds one and runs it alike: the same state (step, data cursor,
    history) on every rank, each taking its share of the micro-batches (nn/distributed.py); only
    rank 0 logs, keeps the curves and writes files.
    """

    def __init__(self, params: Params, name: str, stage: str = "train"):
        self.built_from = stamps.stamp(params, stage, name)
        self.params = params.derived(stage, name)  # a cell's and a rung's are built from their names
        self.name, self.stage = name, stage  # a size's, a cell's or a rung's
        self.out = folder(stage, name)
        self.t = self.params.train_for(name)
        self.diverged: str | None = None  # a sweep cell that diverged: the message is its result

    def build(self) -> None:
        """The device (this rank's GPU under torchrun), the data in curriculum order, the model, its
        optimizers and its wrapper for data parallelism; a rung is refused before any step is taken."""
        t = self.t
        self.device = dev.pick()
        self.world = distributed.start(self.device.type)
        if self.world.main:
            cost.check(self.params, self.name)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.world.local_rank)
        dev.setup(self.device)
        self.dtype = dev.precision(self.device, t.dtype)
        self.index = verify()
        check_windows(self.index["val"]["tokens"], t.seq_len)  # now, not at the first evaluation
        self.plan = paths.PlanFiles(self.params.plan_for(self.name))
        self.staging = read_json(need(self.plan.plan, f"curriculum plan ({self.plan.name})"))
        self.stream = TrainStream(self.index, np.load(need(self.plan.order, f"curriculum order ({self.plan.name})")))

        torch.manual_seed(self.params.seed)
        self.cfg = recipe.model_config(self.params, self.name, self.index["vocab_size"])
        self.model = GPT(self.cfg).to(self.device)
        self.n_params = self.model.num_params(non_embedding=False)
        self.steps = recipe.steps(t, self.model)
        if "scaling.train" in STAGES[self.stage].params and self.steps * t.batch_tokens > self.index["train"]["tokens"]:
            raise LadderError(
                f"scaling.budgets: rung {self.name} would see {self.steps * t.batch_tokens:,} tokens, "
                f"more than the train split's {self.index['train']['tokens']:,}; rungs stay within one "
                "epoch (the fit has no term for repeated data): lower the budget"
            )
        self.micro_tokens = t.micro_batch * t.seq_len
        self.accum = t.batch_tokens // self.micro_tokens  # micro-batches per step, all ranks together
        self.plan_phases = recipe.phases(self.staging["warmup"], t, self.steps * t.batch_tokens)
        self.lr_at = recipe.schedule(t, self.steps)

        use_compile = t.compile == "on" or (t.compile == "auto" and self.device.type == "cuda")
        self.fwd, self.wrapped = distributed.prepare(self.model, t.parallel, self.world, self.device, use_compile)
        self.opts = recipe.optimizer(self.model, self.params.lr, t, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == "fp16")
        self.flops_per_token = self.model.flops_per_token(t.seq_len)
        self.peak = dev.peak_flops(self.device, self.dtype)
        self.ceiling = math.log(self.cfg.vocab_size) + 1.0  # a loss above this after warm-up is worse than guessing

    def resume(self) -> None:
        """Weights, optimizer, scaler and RNG states, step, data cursor and history from the checkpoint
        when it was made with this run's fingerprint, so a crash costs at most `checkpoint_every` steps;
        any other checkpoint is ignored and the run starts over."""
        fp = fingerprint(self.params, self.name)
        self.state = checkpoint.load(self.out.ckpt, self.model, self.opts, self.scaler, fp, self.world) or {
            "fingerprint": fp,
            "step": 0,
            "pos": 0,
            "history": [],
            "layer_stats": [],
            "train_seconds": 0.0,
            "started_at": time.time(),
        }
        if self.state["step"] and self.world.main:
            log.info("train@%s: resuming from step %d of %d", self.name, self.state["step"], self.steps)

    def train(self) -> None:
        """Every step from the resumed one to the last, logging and checkpointing as the params say."""
        t = self.t
        if self.world.main:
            log.info(
                "train@%s: %.2fM params, %d tokens in %d steps of %d tokens (%d x %d micro-batches), %s on %s%s",
                self.name,
                self.n_params / 1e6,
                self.steps * t.batch_tokens,
                self.steps,
                t.batch_tokens,
                self.accum,
                t.micro_batch,
                self.dtype,
                self.device,
                f" x {self.world.size} ({t.parallel})" if self.world.group else "",
            )
        self.live = open_curves(self.out, self.state) if self.world.main else None

        self.model.train()
        self.t0, self.last_t, self.last_tokens = time.time(), time.time(), self.state["step"] * t.batch_tokens
        self.previous = None  # (loss, step) of the step before, checked once this step is queued: no stall
        self.bar = progress(
            self.steps, desc=f"train@{self.name}", unit="step", initial=self.state["step"], quiet=not self.world.main
        )
        try:
            for step in range(self.state["step"], self.steps):
                lr = self.params.lr * self.lr_at(step)
                log_now = (step + 1) % t.log_every == 0 or step + 1 == self.steps
                loss, grad_norm = self.step(step, lr, log_now)
                if log_now:
                    self.evaluate(step, loss, grad_norm, lr)
                if self.state["step"] % t.checkpoint_every == 0 and self.state["step"] != self.steps:
                    self.checkpoint(loss)
        except Diverged as e:
            if self.stage != "cell":  # a size or rung that diverges has no loss to report: the recipe failed
                raise
            self.diverged = str(e)  # a sweep cell that diverges is a result (its lr is too high), not a failure
            log.info("%s", self.diverged)
        self.bar.close()
        self.state["train_seconds"] += time.time() - self.t0

    def step(self, step: int, lr: float, log_now: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on this rank's share of the batch; (loss, gradient norm), still on the device.
        The loss is checked without stalling the device: on one process the step before's, once this
        one is queued; across processes the whole batch's, where it is logged or checkpointed."""
        t, world = self.t, self.world
        seq_len = next(L for L, end in self.plan_phases if step * t.batch_tokens < end)
        rows = self.micro_tokens // seq_len
        recipe.set_lr(self.opts, lr)

        micro = [
            self.stream.batch(self.state["pos"] + j * rows * seq_len, rows, seq_len)  # this rank's share
            for j in range(world.rank, self.accum, world.size)
        ]
        self.state["pos"] += self.accum * rows * seq_len
        inspect = (lambda: self.inspect(step, micro[-1][0])) if log_now else None
        on_device = ((to_device(x, self.device), to_device(y, self.device)) for x, y in micro)
        loss, grad_norm = recipe.step(
            self.model,
            self.fwd,
            self.opts,
            self.scaler,
            on_device,
            len(micro),
            t,
            self.device,
            self.dtype,
            inspect,
            self.wrapped,
        )
        if world.size > 1 and (log_now or (step + 1) % t.checkpoint_every == 0):
            loss = distributed.mean(loss, world)  # the loss of the whole batch, checked on every rank alike
        elif world.size == 1 and self.previous is not None:
            self.check_finite(*self.previous)
        self.previous = (loss, step + 1)
        self.state["step"] = step + 1
        self.bar.update(1)
        return loss, grad_norm

    def check_finite(self, loss: torch.Tensor | float, step: int, what: str = "loss") -> None:
        """A non-finite loss ends the run before anything of it is written: a NaN spreads to every weight."""
        if not math.isfinite(float(loss)):
            raise Diverged(
                f"train@{self.name}: {what} is {float(loss)} at step {step} of {self.steps}; no model or "
                f"result was written. Lower lr ({self.params.lr:g}), set train.grad_clip, or use "
                "train.dtype: bf16 or fp32"
            )

    def inspect(self, step: int, x: torch.Tensor) -> None:
        """Layer statistics of a logged step, taken inside it: after clipping, while the gradients exist."""
        stats = [
            {"tokens": (step + 1) * self.t.batch_tokens, **r}
            for r in layer_stats(self.model, to_device(x, self.device), self.device, self.dtype)
        ]
        self.state["layer_stats"] += stats
        if self.world.main:  # appended as it grows, through no link (the file open_curves wrote)
            with os.fdopen(open_owned(self.out.layer_stats, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a") as f:
                pd.DataFrame(stats, columns=LAYER_STATS).to_csv(f, sep="\t", index=False, header=False)

    def evaluate(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor, lr: float) -> None:
        """A logged step's metrics (val loss every `eval_every` steps and at the end) into the curves
        (rank 0), the history a resume replays them from, and the progress bar."""
        t, taken = self.t, self.state["step"]  # steps taken, `step` (counted from 0) included
        self.check_finite(loss, taken)
        metrics = self.throughput(loss, grad_norm, lr)
        if taken % t.eval_every == 0 or taken == self.steps:
            metrics["val_loss"] = round(
                evaluate_loss(self.model, self.index, t.seq_len, t.micro_batch, t.eval_tokens, self.device, self.dtype),
                5,
            )
            self.check_finite(metrics["val_loss"], taken, "val loss")
        if step >= int(t.warmup_frac * self.steps) and metrics["loss"] > self.ceiling:
            log.info(
                "train@%s: warning: loss %.2f at step %d is above ln(vocab) + 1 = %.2f: the run "
                "is diverging (lower lr, or check train.grad_clip)",
                self.name,
                metrics["loss"],
                taken,
                self.ceiling,
            )
        tokens = taken * t.batch_tokens
        if self.world.main:
            log_metrics(self.live, tokens, metrics)
        self.state["history"].append([tokens, metrics])
        self.bar.set_postfix({k: metrics[k] for k in ("loss", "tokens_per_s", "mfu") if k in metrics})

    def throughput(self, loss: torch.Tensor, grad_norm: torch.Tensor, lr: float) -> dict:
        """Loss, lr, gradient norm, and speed since the last logged step (the device synced first)."""
        dev.sync(self.device)
        now, tokens = time.time(), self.state["step"] * self.t.batch_tokens
        rate = (tokens - self.last_tokens) / max(now - self.last_t, 1e-9)
        self.last_t, self.last_tokens = now, tokens
        metrics = {
            "loss": round(loss.item(), 5),
            "lr": lr,
            "tokens_per_s": round(rate, 1),
            "seconds": round(self.state["train_seconds"] + now - self.t0, 2),
        }  # wall time so far: time to a loss
        if math.isfinite(norm := grad_norm.item()):  # fp16: an overflowing step is skipped, its norm inf
            metrics["grad_norm"] = round(norm, 5)
        if self.peak:
            metrics["mfu"] = round(rate * self.flops_per_token / self.peak, 4)
        return metrics

    def checkpoint(self, loss: torch.Tensor) -> None:
        """The state so far, finite only; the wall time is banked with it, so a resumed run's adds up."""
        self.check_finite(loss, self.state["step"])
        self.state["train_seconds"] += time.time() - self.t0
        self.t0 = time.time()
        checkpoint.save(self.out.ckpt, self.model, self.opts, self.scaler, self.state, self.world)

    def finish(self) -> dict:
        """Write the outputs (every rank), leave the process group, and close the curves (rank 0)."""
        summary = self.write()
        distributed.stop(self.world)
        if not self.world.main:
            return summary
        self.live.end()
        log.info(
            "%s@%s: done, loss %s, val loss %s, %.0f tokens/s",
            self.stage,
            self.name,
            summary["final_loss"],
            summary["final_val_loss"],
            summary["tokens_per_s"],
        )
        return summary

    def write(self) -> dict:
        """The model, its config and train.json (which records the sha256 of both, so that every reader
        checks them and intact.py reruns the stage when either changed), atomically together (rank 0);
        then the final checkpoint.
        Every rank calls this: under FSDP the whole model is gathered first. A sweep cell or a rung keeps
        no model (its result is its loss), and a diverged cell neither its last state."""
        out, summary = self.out, self.summary()
        if self.stage != "train":
            if self.world.main:
                with atomic(out.config, out.summary) as (tmp_cfg, tmp_summary):
                    write_json(tmp_cfg, dataclasses.asdict(self.model.config))
                    summary["config_sha256"] = sha256_file(tmp_cfg)
                    write_json(tmp_summary, summary)
            if not self.diverged:
                checkpoint.save(out.ckpt, self.model, self.opts, self.scaler, self.state, self.world)
            return summary
        model_sd, _ = distributed.full_state(self.model, [], self.world)
        if self.world.main:
            plain = self.model
            if distributed.sharded(self.model):
                plain = GPT(self.model.config)
                plain.load_state_dict(model_sd)
            with (
                written(out.model, SafetensorError),
                atomic(out.model, out.config, out.summary, *out.curves.values()) as (
                    tmp_model,
                    tmp_cfg,
                    tmp_summary,
                    *tmp_curves,
                ),
            ):
                save_model(plain, str(tmp_model))
                write_json(tmp_cfg, dataclasses.asdict(self.model.config))
                summary["model_sha256"] = sha256_file(tmp_model)
                summary["config_sha256"] = sha256_file(tmp_cfg)  # the model's shape: checked as its weights are
                write_json(tmp_summary, summary)
                for metric, tmp in zip(out.curves, tmp_curves):
                    write_curve(tmp, metric, self.state["history"])
        checkpoint.save(out.ckpt, self.model, self.opts, self.scaler, self.state, self.world)
        return summary

    def summary(self) -> dict:
        """train.json: what the run did, on what, and what it was built from."""
        t, model, state = self.t, self.model, self.state
        tokens = self.steps * t.batch_tokens
        last = None if self.diverged else state["history"][-1][1]
        return {
            "size": self.name,
            "params": model.num_params(non_embedding=False),
            "params_non_embedding": model.num_params(non_embedding=True),
            "tokens": tokens,
            "flops": model.flops_per_token(t.seq_len) * tokens,  # nn/model.py's count
            "steps": self.steps,
            "micro_batch": t.micro_batch,
            "train_seconds": round(state["train_seconds"], 2),
            "started_at": state.get("started_at"),  # unix time of step 0 (a resumed run keeps its first start)
            "tokens_per_s": round(tokens / max(state["train_seconds"], 1e-9), 1),
            "final_loss": None if last is None else last["loss"],
            "final_val_loss": None if last is None else last.get("val_loss"),
            "diverged": self.diverged,
            "device": str(self.device),
            "devices": self.world.size,
            "parallel": t.parallel if self.world.group else None,
            "dtype": self.dtype,
            "curriculum": {"plan": self.plan.name}
            | {k: v for k, v in self.staging.items() if k != "built_from"}
            | {"phases": self.plan_phases},
            "params_used": params_of(self.params, "train", self.name),
            "lr": self.params.lr,
            "seed": self.params.seed,
            "built_from": self.built_from,
        }


def run(params: Params, name: str, stage: str = "train") -> dict:
    """Train one size, one sweep cell or one scaling rung (`name`; `stage` train, cell or rung); under
    torchrun, every rank runs this (nn/distributed.py)."""
    training = Training(params, name, stage)
    training.build()
    training.resume()
    training.train()
    return training.finish()


def open_curves(out: paths.RunFiles, state: dict):
    """dvclive's curves (the token count as the step), with the run before a resume replayed into them,
    and a fresh layer_stats.tsv holding that run's rows."""
    from dvclive import Live

    remove(out.live)  # written afresh, so no link planted in it is written through
    with written(out.live, sqlite3.Error):  # dvclive opens the DVC repo, whose cache is an sqlite file
        live = Live(str(out.live), dvcyaml=None, save_dvc_exp=False, report=None)
    for tokens, metrics in state["history"]:
        log_metrics(live, tokens, metrics)
    with atomic(out.layer_stats) as (tmp,):
        pd.DataFrame(state["layer_stats"], columns=LAYER_STATS).to_csv(tmp, sep="\t", index=False)
    return live


def log_metrics(live, tokens: int, metrics: dict) -> None:
    live.step = tokens
    for k, v in metrics.items():
        live.log_metric(k, v)


def write_curve(path, metric: str, history: list) -> None:
    """One metric by tokens, a plot of the size's train stage in dvc.yaml: DVC cannot declare live/'s
    copy (a file inside an output) as one, and per-size plots list only the sizes that exist."""
    rows = [(tokens, m[metric]) for tokens, m in history if metric in m]
    pd.DataFrame(rows, columns=["tokens", metric]).to_csv(path, sep="\t", index=False)  # atomic: write()'s sibling


def add_arguments(p) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--size",
        help="a size under sizes: in params.yaml; what shapes the run: seed, lr (or the size's own, "
        "sizes.<size>.train.lr), train.*, sizes.<size>.* and the plan pipeline.sizes names for it (default base)",
    )
    which.add_argument(
        "--cell",
        help="a cell of the learning-rate sweep, shape-parametrization-lr-seed "
        "(e.g. w128-d4-mup-0.003-1); shaped by train.* and sweep.*, on the base plan",
    )
    which.add_argument(
        "--rung",
        help="a rung of the scaling ladder, shape-budget (e.g. w64-d2-131072); shaped by "
        "seed, lr, train.* and scaling.*, on the base plan",
    )
    which.add_argument(
        "--replica",
        help="a rung again at another seed, shape-budget-seed (e.g. w32-d1-819200-1), for the noise floor of "
        "`ladder compare`; shaped by lr, train.*, scaling.* and compare.*",
    )
    which.add_argument(
        "--arm",
        help="a variant's rung, variant-shape-budget (e.g. untied-w32-d1-819200): the rung with "
        "compare.variants.<variant> applied",
    )


def main(args) -> None:
    params = load(args.params)
    stage, name, flag = next(
        (s.name, name, s.per) for s in STAGES.values() if s.command == "train" and (name := getattr(args, s.per))
    )
    t = params.derived(stage, name).train_for(name)
    distributed.relaunch(t.devices, ["train", f"--{flag}", name, "--params", args.params])
    run(params, name, stage)
