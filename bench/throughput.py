#!/usr/bin/env python3
"""Training throughput of the ladder's model shapes: tokens/s, step time, peak memory, MFU.

Each size trains for --steps timed optimizer steps after --warmup untimed ones
(the first of which compiles), on random tokens by default: vocab 50304 and
context 1024, nanoGPT's setting, so the figures compare with its published
ones.  --data shards reads the pipeline's train shards instead, through the
train stage's loader, inside the timed step.  One step = --grad-accum
micro-batches (or as many as --batch-tokens needs) forward+backward, gradient
clipping and the optimizer's update, through the train stage's own recipe
(src/ladder/nn/recipe.py) with params.yaml's train: settings (Muon for the
hidden matrices as shipped); the shapes are params.yaml's sizes.  The update
alone (clipping and the optimizers) is then timed on its own: its share of
the step is what the optimizer costs.

--nanogpt MODEL_PY adds the control: karpathy/nanoGPT's model.py, built and
stepped as its train.py does, at the same micro-batches and tokens per step,
in the same process, and a table of the two speeds.

MFU = model.flops_per_token(T) * tokens/s / peak, peak = 989 TFLOP/s (H100 SXM
dense bf16) unless --peak-tflops says otherwise.  flops_per_token is 6N + 12LdT
with N the matmul weights incl. lm_head (nanoGPT's convention).

    # H100: the shipped recipe at the GPU ladder's batch against nanoGPT's model.py
    PYTHONPATH=src python bench/throughput.py --sizes small medium --batch-tokens 65536 \\
        --nanogpt ../nanoGPT/model.py
    # CPU smoke test (a couple of slow steps)
    PYTHONPATH=src python bench/throughput.py --device cpu --no-compile --sizes tiny --seq-len 64 \\
        --micro-batch 2 --steps 2 --warmup 1
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import itertools
import json
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from ladder.nn import device as dev
from ladder.nn import distributed, recipe
from ladder.nn.loader import TrainStream, to_device, verify  # noqa: E402
from ladder.nn.model import GPT, GPTConfig  # noqa: E402
from ladder.pipeline import config  # noqa: E402
from ladder.pipeline.files import LadderError  # noqa: E402

PARAMS = config.load(Path(__file__).resolve().parents[1] / "params.yaml")
SIZES = {name: dict(n_layer=s.n_layer, n_head=s.n_head, n_embd=s.n_embd) for name, s in PARAMS.sizes.items()}
MICRO_BATCH = {"tiny": 64, "mini": 64, "small": 32, "medium": 16}  # nanoGPT's for small / medium


def parse_micro_batch(items: list[str], sizes: list[str]) -> dict[str, list[int]]:
    """["16"] -> every size 16; ["small=32,64", "medium=16"] -> per size, a list to sweep."""
    out = {s: [MICRO_BATCH.get(s, 16)] for s in sizes}
    for item in items:
        name, _, value = item.rpartition("=")
        for s in [name] if name else sizes:
            out[s] = [int(v) for v in value.split(",")]
    return out


class GeluMLP(nn.Module):
    def __init__(self, C: int):
        super().__init__()
        self.c_fc, self.c_proj = nn.Linear(C, 4 * C, bias=False), nn.Linear(4 * C, C, bias=False)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class TokenAndPosition(nn.Module):
    """Token embedding plus a learned position embedding; `.weight` stays the (tied) token table."""

    def __init__(self, tokens: nn.Embedding, block_size: int):
        super().__init__()
        self.tokens, self.positions = tokens, nn.Embedding(block_size, tokens.embedding_dim)
        self.weight = tokens.weight

    def forward(self, idx):
        return self.tokens(idx) + self.positions(torch.arange(idx.size(1), device=idx.device))


def to_gpt2_layout(model: GPT) -> nn.Parameter:
    """Diagnostic: rebuild the blocks in nanoGPT's GPT-2 layout (LayerNorm without bias, GELU MLP of
    4C, learned positions; main() turns RoPE off), so its published figures compare like with like.
    Not a model the project trains. Returns the new position table, for an optimizer group."""
    C = model.config.n_embd
    for block in model.layers:
        block.input_layernorm, block.post_attention_layernorm = nn.LayerNorm(C, bias=False), nn.LayerNorm(C, bias=False)
        block.mlp = GeluMLP(C)
    model.embed_tokens = TokenAndPosition(model.embed_tokens, model.config.block_size)
    return model.embed_tokens.positions.weight


def random_batches(B: int, T: int, vocab: int, device: torch.device, seed: int = 0, n: int = 4):
    """n random (x, y) batches made on the device, cycled: no input pipeline at all."""
    g = torch.Generator(device=device).manual_seed(seed)
    data = [
        (
            torch.randint(0, vocab, (B, T), device=device, generator=g),
            torch.randint(0, vocab, (B, T), device=device, generator=g),
        )
        for _ in range(n)
    ]
    return itertools.cycle(data)


def shard_batches(index: dict, B: int, T: int, device: torch.device):
    """The pipeline's train shards, read as the train stage reads them (in stream order, from a
    cursor, pinned and copied without blocking), inside the timed step."""
    stream = TrainStream(index, np.array([[0, index["train"]["tokens"]]]))
    for pos in itertools.count(0, B * T):
        x, y = stream.batch(pos, B, T)
        yield to_device(x, device), to_device(y, device)


def accumulation(args, B: int) -> int:
    """Micro-batches per optimizer step: --grad-accum, or as many as --batch-tokens needs."""
    if not args.batch_tokens:
        return args.grad_accum
    per_micro = B * args.seq_len * args.world.size
    if args.batch_tokens % per_micro:
        raise SystemExit(
            f"throughput: error: --batch-tokens {args.batch_tokens} is no multiple of micro-batch {B} x {args.seq_len}"
        )
    return args.batch_tokens // per_micro


def bench_one(size: str, B: int, args, device: torch.device) -> dict:
    """This project's model through the train stage's recipe (params.yaml's train: optimizer)."""
    T, accum = args.seq_len, accumulation(args, B)
    V = args.index["vocab_size"] if args.data == "shards" else args.vocab
    torch.manual_seed(0)
    shape = dict(SIZES[size])
    if args.head_dim:
        shape["n_head"] = shape["n_embd"] // args.head_dim
    cfg = GPTConfig(
        vocab_size=V,
        block_size=T,
        **shape,
        tie_weights=args.tie_weights,
        mup=args.mup,
        mlp_hidden=args.mlp_hidden,
        checkpoint_activations=args.checkpoint_activations,
        fp32_residual=args.fp32_residual,
    )
    model = GPT(cfg)
    positions = to_gpt2_layout(model) if args.layout == "gpt2" else None
    model.to(device)
    model.fused_loss = args.fused_loss
    fwd, wrapped = distributed.prepare(model, args.parallel, args.world, device, args.compile, args.compile_mode)
    opts = recipe.optimizer(model, 6e-4, PARAMS.train, device)
    if positions is not None:  # no decay, like the token table
        opts[0].add_param_group(dict(params=[positions], weight_decay=0.0, lr=6e-4))
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    dtype = args.dtype if device.type == "cuda" else "fp32"

    def make_batches():
        return shard_batches(args.index, B, T, device) if args.data == "shards" else random_batches(B, T, V, device)

    with torch.no_grad():  # reference: eager fp32 loss at init, on the batch the first step sees
        ref_loss = model(*next(make_batches()))[1].item()
    batches = make_batches()

    def step():
        micro = (next(batches) for _ in range(accum))
        return recipe.step(model, fwd, opts, scaler, micro, accum, PARAMS.train, device, dtype, wrapped=wrapped)[0]

    def backward():
        with dev.autocast(device, dtype):
            fwd(*next(batches))[1].backward()

    update = lambda: recipe.update(model, opts, scaler, PARAMS.train)  # noqa: E731
    row = measure(step, backward, update, args, device, B, accum, size in args.profile)
    return dict(
        row,
        size=size,
        model="ladder",
        optimizer=PARAMS.train.optimizer,
        params_M=model.num_params(non_embedding=False) / 1e6,
        params_nonemb_M=model.num_params(non_embedding=True) / 1e6,
        mfu=model.flops_per_token(T) * row["tok_s"] / (args.peak_tflops * 1e12),
        flops_per_token=model.flops_per_token(T),
        loss_vs_fp32_eager=row.pop("first_loss") - ref_loss if accum == 1 else None,
    )


def bench_nanogpt(size: str, B: int, args, device: torch.device) -> dict:
    """The control: karpathy/nanoGPT's model.py (--nanogpt), built and stepped as its train.py does it
    (bias-free, no dropout, tied head, fused AdamW from its configure_optimizers, clipping at 1.0,
    bf16 autocast, torch.compile), at the same micro-batch and tokens per optimizer step."""
    spec = importlib.util.spec_from_file_location("nanogpt_model", args.nanogpt)
    nano = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nano)
    T, accum, V = args.seq_len, accumulation(args, B), args.vocab
    torch.manual_seed(0)
    cfg = nano.GPTConfig(block_size=T, vocab_size=V, **SIZES[size], dropout=0.0, bias=False)
    model = nano.GPT(cfg).to(device)
    opt = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95), device.type)
    fwd = torch.compile(model) if args.compile else model
    dtype = args.dtype if device.type == "cuda" else "fp32"
    batches = random_batches(B, T, V, device)

    def backward(scale: float = 1.0):
        with dev.autocast(device, dtype):
            _, loss = fwd(*next(batches))
        (loss * scale).backward()
        return loss.detach()

    def update():
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def step():
        loss = sum(backward(1 / accum) for _ in range(accum)) / accum
        update()
        opt.zero_grad(set_to_none=True)
        return loss

    row = measure(step, backward, update, args, device, B, accum, size in args.profile)
    row.pop("first_loss")
    n = sum(p.numel() for p in model.parameters()) - model.transformer.wpe.weight.numel()
    flops = 6 * n + 12 * cfg.n_layer * cfg.n_embd * T  # nanoGPT's own count (estimate_mfu)
    return dict(
        row,
        size=size,
        model="nanoGPT",
        optimizer="adamw",
        params_M=n / 1e6,
        mfu=flops * row["tok_s"] / (args.peak_tflops * 1e12),
        flops_per_token=flops,
    )


def measure(step, backward, update, args, device: torch.device, B: int, accum: int, profile: bool) -> dict:
    """--warmup untimed steps, then --steps timed ones (tokens/s over their wall clock); then the update
    alone (clipping and every optimizer's step, from the gradients of one backward), timed over as many
    calls, for its share of a step."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def timed(fn, n: int) -> tuple[list[float], float]:
        if device.type == "cuda":
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
        t0 = time.perf_counter()
        for i in range(n):
            if device.type == "cuda":
                events[i][0].record()
            fn()
            if device.type == "cuda":
                events[i][1].record()
        sync()
        wall = time.perf_counter() - t0
        ms = [a.elapsed_time(b) for a, b in events] if device.type == "cuda" else [1000 * wall / n] * n
        return ms, wall

    t0 = time.perf_counter()
    first = None
    for _ in range(args.warmup):
        loss = step()
        first = loss.item() if first is None else first
    sync()
    warmup_s = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    last = []
    step_ms, wall_s = timed(lambda: last.append(step()), args.steps)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    if profile and args.world.main:  # after timing, so it cannot disturb the numbers
        print_profile(step, device, sync)
    backward()
    update_ms, _ = timed(update, args.steps)
    tokens = accum * B * args.seq_len * args.world.size  # every rank's micro-batches
    return dict(
        micro_batch=B,
        grad_accum=accum,
        tokens_per_step=tokens,
        tok_s=tokens * args.steps / wall_s,  # wall clock over all timed steps: nothing hidden
        step_ms_median=statistics.median(step_ms),
        step_ms_min=min(step_ms),
        step_ms_mean=1000 * wall_s / args.steps,
        update_ms_median=statistics.median(update_ms),
        update_share=statistics.median(update_ms) / statistics.median(step_ms),
        peak_mem_gib=peak,
        warmup_s=warmup_s,
        final_loss=last[-1].item(),
        first_loss=first,
    )


# Kernel name patterns -> where the time goes; the first match wins, unmatched kernels are "other".
KERNEL_KINDS = [
    ("loss (Triton)", re.compile(r"_loss_and_grad")),
    ("GEMM", re.compile(r"nvjet|gemm|cutlass|xmma|cublas", re.I)),
    ("attention", re.compile(r"cudnn|flash|fmha|attention", re.I)),
    ("optimizer + clip", re.compile(r"adam|multi_tensor|foreach|norm_kernel|lpnorm", re.I)),
    ("Inductor fused (norms, SwiGLU, RoPE, adds, casts)", re.compile(r"^triton_")),
]


def print_profile(step, device: torch.device, sync, steps: int = 3) -> None:
    """Top kernels of a few steps by device time, then that time per step by kind of kernel."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    t0 = time.perf_counter()
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        sync()
    wall_ms = 1000 * (time.perf_counter() - t0) / steps
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = prof.key_averages()
    print(events.table(sort_by=key, row_limit=25, max_name_column_width=90), flush=True)
    if device.type != "cuda":
        return
    kernels = sorted(
        (e for e in prof.events() if e.device_type == DeviceType.CUDA and not e.is_user_annotation),
        key=lambda e: e.time_range.start,
    )
    per_kind: dict[str, float] = {}
    for e in kernels:
        kind = next((k for k, rx in KERNEL_KINDS if rx.search(e.name)), "other")
        per_kind[kind] = per_kind.get(kind, 0.0) + e.time_range.elapsed_us() / 1000 / steps
    busy = sum(per_kind.values())
    print(f"device time per step by kind ({steps} profiled steps; wall {wall_ms:.1f} ms/step under the profiler):")
    for kind, ms in sorted(per_kind.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<52} {ms:8.2f} ms  {100 * ms / busy:5.1f}%")
    print(f"  {'total kernel time':<52} {busy:8.2f} ms", flush=True)
    # Idle stretches between kernels: the latency from one kernel to the next, or the GPU waiting for
    # the CPU (which the profiler slows down, so this overstates the unprofiled idle time).
    gaps, end = [], kernels[0].time_range.end
    for prev, e in zip(kernels, kernels[1:]):
        if e.time_range.start > end:
            gaps.append((e.time_range.start - end, prev.name, e.name))
        end = max(end, e.time_range.end)
    print(f"device idle between kernels: {sum(g for g, *_ in gaps) / 1000 / steps:.2f} ms/step; longest:")
    for us, before, after in sorted(gaps, reverse=True)[:8]:
        print(f"  {us / 1000:6.2f} ms after {before[:60]} before {after[:60]}")


def print_table(rows: list[dict], args, device: torch.device) -> None:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    mode = ("compile" + (f" ({args.compile_mode})" if args.compile_mode else "")) if args.compile else "eager"
    dtype = args.dtype if device.type == "cuda" else "fp32"
    data = (
        f"train shards (vocab {args.index['vocab_size']})"
        if args.data == "shards"
        else f"random tokens (vocab {args.vocab})"
    )
    print(
        f"\n{name}, torch {torch.__version__}, ctx {args.seq_len}, {data}, {mode}, {dtype}, "
        f"tied={args.tie_weights}, mup={args.mup}, ckpt={args.checkpoint_activations}, sdpa={args.sdpa}, "
        f"coord-descent={args.coordinate_descent}, "
        f"fused_loss={args.fused_loss}, fp32_residual={args.fp32_residual}, head_dim={args.head_dim or 'default'}, "
        f"mlp_hidden={args.mlp_hidden or 'default'}, ablate_rope={args.ablate_rope}, layout={args.layout}, "
        f"processes={args.world.size}{f' ({args.parallel}, torchrun)' if args.world.group else ''}, "
        f"{args.steps} timed steps after {args.warmup} warm-up; MFU vs {args.peak_tflops:g} TFLOP/s"
    )
    head = (
        "size",
        "model",
        "optimizer",
        "params (M)",
        "micro-batch x accum",
        "tokens/s",
        "step ms (median)",
        "update ms (share)",
        "peak mem GiB",
        "MFU",
        "warm-up s",
        "loss",
    )
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        if "error" in r:
            print(f"| {r['size']} | {r['model']} | | | {r['micro_batch']} | {r['error']} |" + " |" * 6)
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if device.type == "cuda" else "-"
        print(
            f"| {r['size']} | {r['model']} | {r['optimizer']} | {r['params_M']:.1f} | "
            f"{r['micro_batch']} x {r['grad_accum']} | {r['tok_s']:,.0f} | {r['step_ms_median']:.1f} | "
            f"{r['update_ms_median']:.1f} ({100 * r['update_share']:.1f}%) | {r['peak_mem_gib']:.1f} | {mfu} | "
            f"{r['warmup_s']:.0f} | {r['final_loss']:.2f} |"
        )
    ours = {(r["size"], r["micro_batch"]): r for r in rows if r.get("model") == "ladder" and "error" not in r}
    controls = [r for r in rows if r.get("model") == "nanoGPT" and "error" not in r]
    if controls:
        print("\n| size | tokens per step | ladder tokens/s | nanoGPT tokens/s | ladder / nanoGPT |")
        print("|---|---|---|---|---|")
        for c in controls:
            r = ours.get((c["size"], c["micro_batch"]))
            if r:
                print(
                    f"| {c['size']} | {c['tokens_per_step']:,} | {r['tok_s']:,.0f} | {c['tok_s']:,.0f} | "
                    f"{r['tok_s'] / c['tok_s']:.3f}x |"
                )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["small", "medium"], choices=list(SIZES))
    ap.add_argument(
        "--micro-batch",
        nargs="*",
        default=[],
        help="N for every size, or SIZE=N[,N...] (a list sweeps); defaults: "
        + ", ".join(f"{k}={v}" for k, v in MICRO_BATCH.items()),
    )
    ap.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation happens here)")
    batch = ap.add_mutually_exclusive_group()
    batch.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    batch.add_argument(
        "--batch-tokens",
        type=int,
        default=0,
        help="tokens per optimizer step, every size (accumulating micro-batches as training does; "
        "the GPU ladder's is 65536)",
    )
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=50304)
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--compile-mode", default=None, help="torch.compile mode, e.g. max-autotune-no-cudagraphs")
    ap.add_argument(
        "--coordinate-descent",
        action="store_true",
        help="torch._inductor.config.coordinate_descent_tuning (longer compile)",
    )
    ap.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16", help="autocast dtype on CUDA (CPU: fp32)")
    ap.add_argument(
        "--sdpa",
        choices=["auto", "flash", "cudnn", "efficient"],
        default="auto",
        help="attention kernel on CUDA (auto: PyTorch's choice, cuDNN on H100 with torch 2.11)",
    )
    ap.add_argument("--tie-weights", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--mup", action="store_true")
    ap.add_argument("--checkpoint-activations", action="store_true")
    ap.add_argument(
        "--fused-loss",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="lm_head + cross-entropy in one pass (nn/kernels.py) instead of the plain path",
    )
    ap.add_argument(
        "--fp32-residual",
        action="store_true",
        help="keep the residual stream in float32 under bf16 (the model's train.fp32_residual)",
    )
    ap.add_argument(
        "--head-dim",
        type=int,
        default=0,
        help="diagnostic: n_head = n_embd / this, instead of the size's (64 for small and medium)",
    )
    ap.add_argument("--mlp-hidden", type=int, default=0, help="SwiGLU hidden size (0: the model's default)")
    ap.add_argument(
        "--layout",
        choices=["llama", "gpt2"],
        default="llama",
        help="diagnostic: gpt2 = nanoGPT's block layout (LayerNorm, GELU 4C, learned positions, "
        "no RoPE) to compare with its published figures like with like",
    )
    ap.add_argument(
        "--ablate-rope",
        action="store_true",
        help="diagnostic: skip the rotary embedding (a wrong model) to see what it costs",
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="MFU denominator (H100 SXM dense bf16)")
    ap.add_argument(
        "--data",
        choices=["random", "shards"],
        default="random",
        help="random tokens (vocab --vocab), or the pipeline's train shards in data/shards/ "
        "(their tokenizer's vocab), read inside the timed step as the train stage reads them",
    )
    ap.add_argument("--profile", nargs="*", default=[], choices=list(SIZES), help="print top kernels for these sizes")
    ap.add_argument(
        "--parallel",
        choices=["ddp", "fsdp"],
        default="ddp",
        help="under torchrun (e.g. torchrun --standalone --nproc_per_node=2 bench/throughput.py): wrap "
        "the model as the train stage does with train.devices > 1; tokens/s counts every rank",
    )
    ap.add_argument(
        "--nanogpt",
        type=Path,
        default=None,
        metavar="MODEL_PY",
        help="also time karpathy/nanoGPT's model.py (this path) as the control, in the same process: same "
        "shapes, micro-batches and tokens per step, random tokens, its own fused AdamW",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    if args.nanogpt and not args.nanogpt.is_file():
        ap.error(f"--nanogpt {args.nanogpt}: no such file (karpathy/nanoGPT's model.py)")
    try:
        args.index = verify() if args.data == "shards" else None  # every shard against its sha256, once
    except LadderError as e:
        print(f"throughput: error: {e}", file=sys.stderr)
        return 1

    device = torch.device(args.device)
    args.world = distributed.start(device.type)
    if device.type == "cuda" and args.world.group:
        device = torch.device("cuda", args.world.local_rank)
    if args.ablate_rope or args.layout == "gpt2":
        import ladder.nn.model

        ladder.nn.model.apply_rope = lambda x, cos, sin: x
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        if args.coordinate_descent:  # inductor tunes its pointwise/reduction kernels' launch configs
            import torch._inductor.config as inductor_config

            inductor_config.coordinate_descent_tuning = True
        if args.sdpa != "auto":  # leave only the chosen fused attention kernel (plus the math fallback)
            torch.backends.cuda.enable_flash_sdp(args.sdpa == "flash")
            torch.backends.cuda.enable_cudnn_sdp(args.sdpa == "cudnn")
            torch.backends.cuda.enable_mem_efficient_sdp(args.sdpa == "efficient")
    rows = []
    for size in args.sizes:
        for B in parse_micro_batch(args.micro_batch, args.sizes)[size]:
            for name, bench in (("ladder", bench_one), ("nanoGPT", bench_nanogpt)):
                if name == "nanoGPT" and args.nanogpt is None:
                    continue
                try:
                    row = bench(size, B, args, device)
                except torch.OutOfMemoryError:
                    row = dict(size=size, model=name, micro_batch=B, error="OOM")
                rows.append(row)
                if args.world.main:
                    print(json.dumps(row), flush=True)
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                torch._dynamo.reset()
    if args.world.main:
        print_table(rows, args, device)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    distributed.stop(args.world)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
