"""`ladder generate`: text from a trained size, printed token by token as it is sampled.

Byte-level BPE may split one character over several tokens (an accented letter or a CJK character
is 2-3 bytes, often 2-3 tokens), so the new tokens are decoded in small groups that each end on a
whole character (tokens.decode_stream): printing token by token would show replacement characters. Generation stops at
the end-of-text token, past which the model would start an unrelated document.

Prompts from a file are completed one after the other: batching prompts of different lengths
needs left padding, which our forward does not mask, so it would change the results.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from ladder.data import tokens
from ladder.data.tokens import EOT, decode_stream
from ladder.nn import device as dev
from ladder.nn.checkpoint import load_trained
from ladder.nn.model import GPT
from ladder.pipeline import options
from ladder.pipeline.config import load
from ladder.pipeline.files import LadderError, need


def prompt_ids(tok, prompt: str, device) -> torch.Tensor:
    """(1, T) ids; an empty prompt is the end-of-text token, i.e. the start of a new document."""
    ids = tok.encode(prompt).ids or [tok.token_to_id(EOT)]
    return torch.tensor([ids], dtype=torch.long, device=device)


def new_tokens(model: GPT, idx: torch.Tensor, args, stop: int) -> Iterator[int]:
    """Sampled ids for one prompt, up to (not including) the `stop` token."""
    gen = torch.Generator(device=idx.device).manual_seed(args.seed)
    for t in model.generate(
        idx,
        args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k or None,
        top_p=args.top_p,
        use_cache=not args.no_cache,
        generator=gen,
    ):
        if t.item() == stop:
            return
        yield t.item()


def cache_speedup(model: GPT, prompt_ids: torch.Tensor, n_tokens: int) -> dict:
    """Greedy tokens/s with and without the KV cache from the same prompt (B, T).

    Both paths run once briefly first, so kernel selection and allocation are not timed. Past
    block_size the cache is refilled at every step (see GPT.generate), so keep prompt + n_tokens
    within it to measure the cache itself.
    """
    device = prompt_ids.device

    def run(use_cache: bool, n: int) -> tuple[torch.Tensor, float]:
        dev.sync(device)
        t0 = time.perf_counter()
        out = torch.cat(list(model.generate(prompt_ids, n, temperature=0, use_cache=use_cache)), dim=1)
        dev.sync(device)
        return out, time.perf_counter() - t0

    run(True, 2)
    run(False, 2)
    cached, t_cached = run(True, n_tokens)
    uncached, t_uncached = run(False, n_tokens)
    return {
        "prompt_tokens": prompt_ids.size(1),
        "new_tokens": n_tokens,
        "cached_tokens_per_s": round(n_tokens * prompt_ids.size(0) / t_cached, 1),
        "uncached_tokens_per_s": round(n_tokens * prompt_ids.size(0) / t_uncached, 1),
        "speedup": round(t_uncached / t_cached, 2),
        "same_tokens": torch.equal(cached, uncached),
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", required=True, help="a trained size (reads results/<size>/)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="text to continue ('' starts a new document)")
    src.add_argument("--prompts-file", type=Path, help="a file of prompts, one per line, completed in turn")
    p.add_argument("--max-new-tokens", type=options.integer(1), default=200, help="default: %(default)s")
    p.add_argument(
        "--temperature", type=options.real(lo=0), help="0 = greedy (default: eval.temperature in params.yaml)"
    )
    p.add_argument(
        "--top-k",
        type=options.integer(0),
        help="sample among the k likeliest tokens only; 0 = all (default: eval.top_k)",
    )
    p.add_argument(
        "--top-p",
        type=options.real(above=0, hi=1),
        help="sample among the likeliest tokens that hold this much probability; 1 = all (default: eval.top_p)",
    )
    p.add_argument("--seed", type=options.seed, default=1337, help="sampling seed, per prompt (default: %(default)s)")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="recompute the whole context at every step instead of using the KV cache "
        "(same logits up to float rounding, slower)",
    )
    p.add_argument(
        "--compare-cache",
        action="store_true",
        help="instead of printing text, time greedy generation of --max-new-tokens with and without "
        "the KV cache and print both rates",
    )


def prompts(args) -> list[str]:
    if args.prompts_file is None:
        return [args.prompt]
    lines = [line for line in need(args.prompts_file, "prompts file").read_text().splitlines() if line.strip()]
    if not lines:
        raise LadderError(f"{args.prompts_file}: no prompts (one per line)")
    return lines


def main(args) -> None:
    sampling = load(args.params).eval  # the eval stage's sampling settings, unless given here
    if args.temperature is None:
        args.temperature = sampling.temperature
    if args.top_k is None:
        args.top_k = sampling.top_k or 0
    if args.top_p is None:
        args.top_p = sampling.top_p or 1.0
    if args.max_new_tokens < 1:
        raise LadderError(f"--max-new-tokens must be at least 1, not {args.max_new_tokens}")
    if args.temperature < 0:
        raise LadderError(f"--temperature must be >= 0, not {args.temperature}")
    if not 0 < args.top_p <= 1:
        raise LadderError(f"--top-p must be in (0, 1], not {args.top_p}")
    device = dev.pick()
    dev.setup(device)
    tok = tokens.load()
    model = load_trained(args.size, device)
    texts = prompts(args)
    if args.compare_cache:
        for text in texts:
            r = cache_speedup(model, prompt_ids(tok, text, device), args.max_new_tokens)
            print(
                f"{text!r}: {r['new_tokens']} tokens after {r['prompt_tokens']}: "
                f"{r['cached_tokens_per_s']:.0f} tokens/s with the KV cache, "
                f"{r['uncached_tokens_per_s']:.0f} without ({r['speedup']:.2f}x)"
                + ("" if r["same_tokens"] else "; the two paths chose DIFFERENT tokens")
            )
        return
    eot = tok.token_to_id(EOT)
    for n, text in enumerate(texts):
        if n:
            print("\n" + "-" * 40)
        print(text, end="", flush=True)
        for piece, _ in decode_stream(tok, new_tokens(model, prompt_ids(tok, text, device), args, eot)):
            print(piece, end="", flush=True)
        print()
