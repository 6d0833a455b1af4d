"""`ladder attention --size S --prompt "..."`: where each head of a trained size looks, as heatmaps.

The forward pass uses scaled_dot_product_attention, which never materialises the attention
probabilities, so they are recomputed here from each attention module's own input (captured by a
forward pre-hook), projections, RoPE and scale: softmax(q k^T * scale) under the causal mask.
model.py stays untouched, and the maps match what the model computed up to float rounding.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ladder.data import tokens
from ladder.data.tokens import decode_stream
from ladder.nn import device as dev
from ladder.nn.checkpoint import load_trained
from ladder.nn.model import GPT, Attention
from ladder.pipeline import options, paths
from ladder.pipeline.files import LadderError, atomic, is_png, user_target
from ladder.pipeline.progress import log

LABEL_TOKENS = 40  # label the axes with the tokens up to this prompt length ...
LABEL_PANELS = 64  # ... and this many panels (beyond, the image would be huge)


def attention_probs(attn: Attention, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Attention probabilities (B, nh, T, T) of `attn` for its input x (B, T, C)."""
    T = x.size(1)
    q, k, _ = attn.project(x, cos, sin)  # (B, nh, T, hd)
    scores = (q @ k.transpose(-2, -1)).float() * attn.scale  # (B, nh, T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)


@torch.no_grad()
def attention_maps(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """(n_layer, B, nh, T, T) attention probabilities of every layer for the ids idx (B, T)."""
    maps = []

    def record(module, args):
        x, cos, sin = args[:3]  # Block calls self_attn(x, cos, sin, cache, pos)
        maps.append(attention_probs(module, x, cos, sin))

    hooks = [block.self_attn.register_forward_pre_hook(record) for block in model.layers]
    try:
        model(idx)
    finally:
        for h in hooks:
            h.remove()
    return torch.stack(maps)


def token_labels(tok, ids: list[int]) -> list[str]:
    """One label per token: its text with spaces as '␣' and newlines as '\\n'; the k tokens that
    share one character (a byte each, say) are labelled with it as part 1/k ... k/k."""
    labels = []
    for text, n in decode_stream(tok, ids):
        text = text.replace(" ", "␣").replace("\n", "\\n")
        labels += [text] if n == 1 else [f"{text} {i}/{n}" for i in range(1, n + 1)]
    return labels


def plot(maps: torch.Tensor, layers: list[int], labels: list[str] | None, title: str, path: Path) -> None:
    """maps (len(layers), nh, T, T) as a grid of heatmaps (rows: layers, columns: heads) with one colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    n_layer, n_head, T, _ = maps.shape
    panel = 2.2 + 0.09 * T if labels else 2.4  # labelled panels grow with the tokens they must show
    below = 0.5 if labels else 0.35  # room for the x tick labels and the axis title under each panel
    fig, axes = plt.subplots(
        n_layer,
        n_head,
        figsize=(panel * n_head + 1.5, (panel + below) * n_layer + 0.6),
        squeeze=False,
        layout="constrained",
    )
    upper = torch.ones(T, T, dtype=torch.bool).triu(1).numpy()  # future tokens: blank, not dark
    ticks = labels or max(1, T // 8)  # the tokens, or every n-th position
    for layer in range(n_layer):
        for head in range(n_head):
            ax = axes[layer, head]
            sns.heatmap(
                maps[layer, head].numpy(),
                ax=ax,
                mask=upper,
                vmin=0,
                vmax=1,
                cmap="rocket_r",
                square=True,
                cbar=False,
                xticklabels=ticks,
                yticklabels=ticks,
            )
            ax.set_title(f"layer {layers[layer]}, head {head}", fontsize=9)
            ax.tick_params(labelsize=7, length=0)
            ax.tick_params(axis="x", labelrotation=90 if labels else 0)
            ax.tick_params(axis="y", labelrotation=0)
            if layer == n_layer - 1:
                ax.set_xlabel("key (attended to)", fontsize=8)
            if head == 0:
                ax.set_ylabel("query (attending)", fontsize=8)
    fig.colorbar(axes[0, 0].collections[0], ax=axes, shrink=0.6 if n_layer > 1 else 0.8, label="attention probability")
    fig.suptitle(title, fontsize=14)
    with atomic(path) as (tmp,):
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", required=True, help="a trained size (reads results/<size>/)")
    p.add_argument("--prompt", required=True, help=f"text to look at (tokens label the axes up to {LABEL_TOKENS})")
    p.add_argument(
        "--layers", type=options.integer(0), nargs="+", help="layers to show, counting from 0 (default: all)"
    )
    p.add_argument("--out", type=Path, help="output image (default: results/<size>/attention.png)")


def main(args) -> None:
    out = user_target(args.out or paths.RunFiles(args.size).attention, is_png, "attention image")
    device = dev.pick()
    dev.setup(device)
    tok = tokens.load()
    model = load_trained(args.size, device)
    ids = tok.encode(args.prompt).ids
    if not ids:
        raise LadderError("--prompt is empty")
    if len(ids) > model.config.block_size:
        raise LadderError(f"--prompt is {len(ids)} tokens, more than the context of {model.config.block_size}")
    layers = args.layers or list(range(model.config.n_layer))
    if not all(0 <= i < model.config.n_layer for i in layers):
        raise LadderError(f"--layers must be between 0 and {model.config.n_layer - 1}, not {layers}")
    maps = attention_maps(model, torch.tensor([ids], device=device))[layers, 0].cpu()  # (layers, nh, T, T)
    small = len(ids) <= LABEL_TOKENS and maps.size(0) * maps.size(1) <= LABEL_PANELS
    title = f"attention of {args.size} on {args.prompt[:60]!r}" + ("…" if len(args.prompt) > 60 else "")
    plot(maps, layers, token_labels(tok, ids) if small else None, title, out)
    log.info(
        "attention@%s: wrote %s (%d layers x %d heads, %d tokens)", args.size, out, maps.size(0), maps.size(1), len(ids)
    )
