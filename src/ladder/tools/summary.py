"""`ladder summary [SIZES]`: the eval results of every trained size, one row each, then a report card
per size saying in words what the numbers mean (the last thing `make demo` prints)."""

from __future__ import annotations

import argparse

import pandas as pd

from ladder.analysis import runs
from ladder.pipeline import paths
from ladder.pipeline.files import LadderError

# The eval table's columns, with the heading and the format each is printed with.
COLUMNS = {
    "size": ("size", str),
    "params": ("params", lambda n: f"{n / 1e6:.2f}M"),
    "tokens_trained": ("tokens", lambda n: f"{n / 1e6:.2f}M"),
    "val_loss": ("val loss", "{:.3f}".format),
    "val_bits_per_byte": ("bits/byte", "{:.3f}".format),
    "unigram_bits_per_byte": ("unigram", "{:.3f}".format),
    "val_perplexity": ("perplexity", "{:.1f}".format),
    "cloze": ("cloze", lambda x: "-" if pd.isna(x) else f"{x:.3f}"),
    "train_seconds": ("train s", "{:.1f}".format),
    "train_tokens_per_s": ("tokens/s", "{:,.0f}".format),
}


def next_steps(sizes: list[str]) -> str:
    """Three commands to try next. The report names the sizes' results: with no target, Snakemake reports
    everything pipeline.sizes names and stops at the first size not built yet. The experiment changes a
    key of tiny's own (sizes.tiny.train.lr): the shared `lr` shapes every scaling rung too, and reruns them all."""
    targets = " ".join(str(paths.RunFiles(s).eval) for s in sizes)
    steps = [
        (f"snakemake --report report.html {targets}", "one page: curves, eval tables, samples, the fit"),
        (
            "dvc exp run -S sizes.tiny.train.lr=0.006 eval@tiny",
            "tiny alone at its own lr (its prediction, training and eval), then `dvc exp show`",
        ),
        ("ladder plan small", "what GPT-2 small costs before spending a GPU on it"),
    ]
    width = max(len(cmd) for cmd, _ in steps)
    return "Next:\n" + "\n".join(f"  {cmd:<{width}}  {why}" for cmd, why in steps)


def results(sizes: list[str] | None = None) -> list[dict]:
    """Each size's eval results (analysis/runs.py reads them, as for `ladder log`); smallest size first."""
    names = sizes or runs.evaluated_sizes()
    missing = [str(paths.RunFiles(s).eval) for s in names if not paths.RunFiles(s).eval.exists()]
    if missing or not names:
        raise LadderError(f"no eval results at {', '.join(missing) or 'results/*/eval.json'} (run the pipeline first)")
    return runs.evaluations(names)


def eval_table(rows: list[dict]) -> str:
    table = pd.DataFrame(rows)[list(COLUMNS)].rename(columns={k: head for k, (head, _) in COLUMNS.items()})
    return table.to_string(index=False, formatters={head: fmt for head, fmt in COLUMNS.values()})


def card(r: dict) -> str:
    """A few lines for someone who has just trained their first model."""
    p, bpb, floor = r["provenance"], r["val_bits_per_byte"], r["unigram_bits_per_byte"]
    verdict = (
        f"{(1 - bpb / floor):.0%} below" if bpb < floor else f"{(bpb / floor - 1):.0%} ABOVE"
    ) + f" the {floor:.3f} of a unigram model on the same tokens (the floor to clear)"
    lines = [
        f"{r['size']}: {r['params']:,} parameters trained on {r['tokens_trained']:,} tokens in "
        f"{r['train_seconds']:.1f} s ({r['train_tokens_per_s']:,.0f} tokens/s)",
        f"  held-out text: {bpb:.3f} bits per byte, {verdict}",
    ]
    if r["cloze"] is not None:
        lines.append(
            f"  next sentence picked right: {r['cloze']:.0%} of {p['cloze']['items']} "
            f"(chance {p['cloze']['chance']:.0%})"
        )
    if pred := p.get("prediction"):
        lo, hi = pred["interval"]
        lines.append(
            f"  predicted by the scaling fit{' before it trained' if pred['written_before_training'] else ''}: "
            f"val loss {pred['predicted_val_loss']:.3f} ({pred['level']:.0%} interval {lo:.3f}-{hi:.3f}); "
            f"it reached {pred['actual_val_loss']:.3f}, {pred['error']:+.1%}"
            f"{'' if pred['inside_interval'] else ', outside the interval'} (results/scaling/fit.png)"
        )
        lines += [f"  warning: {w}" for w in pred.get("warnings", [])]
    greedy = next((s.get("text") for s in p.get("samples", []) if s.get("mode") == "greedy"), None)
    if greedy:
        lines.append(f"  greedy sample: {' '.join(greedy.split())[:100]!r}")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sizes", nargs="*", help="sizes to show (default: every results/*/eval.json)")


def main(args) -> None:
    rows = results(args.sizes)
    print(eval_table(rows))
    print()
    print("\n\n".join(card(r) for r in rows))
    sizes = ", ".join(f"{paths.RunFiles(r['size']).folder}/" for r in rows)
    print(f"\nFiles: {sizes} (eval.json, eval_provenance.json, samples.md, the model); {paths.SCALING}/")
    print(next_steps([r["size"] for r in rows]))
