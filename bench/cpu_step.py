#!/usr/bin/env python3
"""Where a CPU training step's time goes: the shipped step against its parts' older versions, in one run.

The CPU loop (`make demo`, `dvc exp run`) is dominated by training steps of tiny-sized models, so a
change to the step is measured here against its control, same process, same random batch:
- `torch Muon, plain loss`: torch.optim.Muon (Newton–Schulz in bf16, one matrix at a time) and
  lm_head + F.cross_entropy over all logits, as the step was before nn/muon.py and kernels.py's CPU path;
- `our Muon, plain loss`: nn/muon.py (float32 on a CPU, same-shape matrices stacked);
- `shipped`: nn/muon.py and the fused lm_head + cross-entropy (kernels.py), what training runs.
The arms take turns, --repeats rounds of --steps timed steps each after 3 untimed ones; the table gives
each arm's median ms per step and the range over the rounds. The shapes are params.yaml's.

    python bench/cpu_step.py [--sizes tiny w32-d1] [--repeats 5] [--steps 10] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ladder.nn import recipe
from ladder.nn.device import setup
from ladder.nn.model import GPT
from ladder.pipeline.config import load

ARMS = ("torch Muon, plain loss", "our Muon, plain loss", "shipped")


def build(params, size: str, arm: str, vocab: int):
    torch.manual_seed(0)
    t = params.train_for(size)
    model = GPT(recipe.model_config(params, size, vocab))
    model.fused_loss = arm == "shipped"
    opts = recipe.optimizer(model, params.lr, t, torch.device("cpu"))
    if arm.startswith("torch Muon"):
        hidden = opts[1].param_groups
        opts[1] = torch.optim.Muon(hidden, lr=params.lr, momentum=t.muon_momentum, adjust_lr_fn="match_rms_adamw")
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, vocab, (t.micro_batch, t.seq_len), generator=g)
    return model, opts, x, torch.roll(x, -1, dims=1), t


def timed(params, size: str, arm: str, vocab: int, steps: int) -> float:
    model, opts, x, y, t = build(params, size, arm, vocab)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    accum = t.batch_tokens // (t.micro_batch * t.seq_len)
    one = lambda: recipe.step(model, model, opts, scaler, [(x, y)] * accum, accum, t, torch.device("cpu"), "fp32")  # noqa: E731
    for _ in range(3):
        one()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    return (time.perf_counter() - start) / steps * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["tiny", "w32-d1"], help="sizes or w<width>-d<depth> rung shapes")
    ap.add_argument("--repeats", type=int, default=5, help="rounds of the arms in turn (default: %(default)s)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per arm and round (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: every core, as training)")
    a = ap.parse_args()
    setup(torch.device("cpu"))
    if a.threads:
        torch.set_num_threads(a.threads)
    params = load()
    vocab = params.tokenizer.vocab_size
    print(f"{torch.get_num_threads()} threads, vocabulary {vocab}, torch {torch.__version__}")
    print(f"{'shape':<10} {'arm':<24} {'ms/step':>8}  {'range':>13}  {'vs first':>8}")
    for size in a.sizes:
        key = size if size in params.sizes else f"{size}-{params.scaling.budgets[0]}"  # a rung's name
        p = params if size in params.sizes else params.derived("rung", key)
        ms = {arm: [] for arm in ARMS}
        for _ in range(a.repeats):
            for arm in ARMS:
                ms[arm].append(timed(p, key, arm, vocab, a.steps))
        base = statistics.median(ms[ARMS[0]])
        for arm in ARMS:
            m = statistics.median(ms[arm])
            print(f"{size:<10} {arm:<24} {m:8.0f}  {min(ms[arm]):5.0f}-{max(ms[arm]):<6.0f}  {base / m:7.2f}x")


if __name__ == "__main__":
    main()
