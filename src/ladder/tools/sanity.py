"""`ladder sanity --size S`: three checks worth a minute before a long run, on that size's model.

1. Initial loss ≈ ln(vocab): at init the model should spread its bets evenly. Much higher means
   confidently wrong logits (init scale, output multiplier); much lower means the targets leak
   into the inputs.
2. Every parameter gets a gradient: a module built but left out of the forward pass, or a stray
   detach(), shows up as a parameter whose gradient is missing or zero.
3. Overfit one batch: a model that cannot memorise a few hundred tokens has a bug in the loss,
   the optimizer or the batch, and a long run would only hide it.

The model is built and trained through the train stage's own recipe (nn/recipe.py: same config,
seed, optimizer groups and precision), from untrained weights; nothing is written. The overfit check
uses its own learning rate (--lr), not the experiment's: whether one batch can be memorised says
nothing about the lr a long run wants, and a good long-run lr (3e-4, say) is too slow to memorise a
batch in a minute.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from ladder.nn import device as dev
from ladder.nn import recipe
from ladder.nn.cost import vocab_size
from ladder.nn.loader import Concat, to_device
from ladder.nn.model import GPT
from ladder.pipeline import config, options
from ladder.pipeline.files import LadderError, read_json
from ladder.pipeline.paths import SHARD_INDEX

INIT_TOLERANCE = 0.5  # nats between the initial loss and ln(vocab)
OVERFIT_LOSS = 0.1  # nats: memorised, not merely learnt the unigram statistics


def one_batch(rows: int, seq_len: int, vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(x, y) of shape (rows, seq_len): the start of the train shards if they exist, else random tokens."""
    if SHARD_INDEX.exists():
        train = Concat("train", read_json(SHARD_INDEX))
        n = rows * (seq_len + 1)
        if train.size >= n:
            buf = torch.from_numpy(train.read(0, n).astype(np.int64)).view(rows, seq_len + 1)
            return buf[:, :-1], buf[:, 1:], "the train shards"
    buf = torch.randint(0, vocab, (rows, seq_len + 1), generator=torch.Generator().manual_seed(seed))
    return buf[:, :-1], buf[:, 1:], "random tokens"


def run(
    params: config.Params, size: str, steps: int, rows: int, seq_len: int, lr: float
) -> list[tuple[str, bool, str]]:
    """[(check, passed, figures)] for the three checks; prints what it runs on first."""
    t = params.train_for(size)
    device = dev.pick()
    dev.setup(device)
    dtype = dev.precision(device, t.dtype)
    vocab, vocab_from = vocab_size(params)
    torch.manual_seed(params.seed)
    model = GPT(recipe.model_config(params, size, vocab)).to(device)
    seq_len = min(seq_len, t.seq_len)
    x, y, data = one_batch(rows, seq_len, vocab, params.seed)
    x, y = to_device(x, device), to_device(y, device)
    print(
        f"sanity@{size}: {model.num_params(non_embedding=False) / 1e6:.2f}M params, vocab {vocab} "
        f"(from {vocab_from}), one batch of {rows} x {seq_len} tokens from {data}, {dtype} on {device}, lr {lr:g}"
    )

    opts = recipe.optimizer(model, lr, t, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == "fp16")
    model.train()
    seen = {}

    def look():  # checks 1 and 2 look at the untrained model's gradients
        seen["dead"] = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.any()]

    t0 = time.time()
    for step in range(steps):
        loss, _ = recipe.step(model, model, opts, scaler, [(x, y)], 1, t, device, dtype, look if step == 0 else None)
        if step == 0:
            first = loss.item()
    with torch.no_grad(), dev.autocast(device, dtype):
        last = model(x, y)[1].item()
    dead = seen["dead"]
    expect = math.log(vocab)
    n = len(list(model.parameters()))
    missing = ", ".join(dead[:4]) + (f" and {len(dead) - 4} more" if len(dead) > 4 else "")
    return [
        (
            "initial loss",
            abs(first - expect) < INIT_TOLERANCE,
            f"{first:.3f} vs ln({vocab}) = {expect:.3f} (tolerance {INIT_TOLERANCE})",
        ),
        (
            "gradient flow",
            not dead,
            f"{n - len(dead)} of {n} parameters get a gradient" + (f"; none: {missing}" if dead else ""),
        ),
        (
            "overfit one batch",
            last < OVERFIT_LOSS,
            f"loss {first:.3f} -> {last:.4f} after {steps} steps (pass < {OVERFIT_LOSS}), {time.time() - t0:.1f} s",
        ),
    ]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", required=True, help="a size under sizes: in params.yaml (need not be trained)")
    p.add_argument(
        "--steps",
        type=options.integer(1),
        default=150,
        help="optimizer steps to overfit the batch (default: %(default)s)",
    )
    p.add_argument("--rows", type=options.integer(1), default=2, help="rows in the batch (default: %(default)s)")
    p.add_argument(
        "--seq-len",
        type=int,
        default=64,
        help="tokens per row, at most the size's train.seq_len (default: %(default)s)",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=3e-3,
        help="learning rate of the overfit check, whatever params.yaml's lr (default: %(default)s)",
    )


def main(args) -> None:
    if min(args.steps, args.rows, args.seq_len) < 1:
        raise LadderError("--steps, --rows and --seq-len must be at least 1")
    results = run(config.load(args.params), args.size, args.steps, args.rows, args.seq_len, args.lr)
    width = max(len(name) for name, _, _ in results)
    for name, ok, figures in results:
        print(f"  {name:<{width}}  {'PASS' if ok else 'FAIL'}  {figures}")
    failed = [name for name, ok, _ in results if not ok]
    if failed:
        raise LadderError(f"sanity@{args.size}: {len(failed)} of {len(results)} checks failed: {', '.join(failed)}")
