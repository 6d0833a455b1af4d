"""`ladder <command>`: one subcommand per pipeline stage, plus tools around the pipeline.

Stage commands read params.yaml from the working directory (the project root), refresh the params
snapshots Snakemake watches, and write their outputs atomically. Expected failures (bad params, bad
input files) print one line naming the key or file and exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ladder import config
from ladder.files import LadderError

STAGES = ("download", "subset", "tokenizer", "shard", "curriculum", "score", "train", "eval")
# Tools around the pipeline: command -> (module with add_arguments(parser) and main(args), help).
TOOLS = {
    "generate": ("generate", "sample text from a trained size, streamed as it is generated"),
    "sanity": ("sanity", "check a size before a long run: initial loss, gradient flow, overfitting one batch"),
    "export-hf": ("export", "write a trained size as a Hugging Face transformers folder (results/<size>/hf/)"),
    "attention": ("attention", "plot a trained size's attention maps on a prompt (results/<size>/attention.png)"),
    "coord-check": ("coordcheck", "plot activation scales across widths under SP and μP (the coordinate check)"),
}


def _stage(name: str, args) -> None:
    params = config.load(args.params)
    config.write_snapshots(params)
    if name == "download":
        from ladder import download
        download.run(params.data)
    elif name == "subset":
        from ladder import subset
        subset.run(params.subset, params.seed)
    elif name == "tokenizer":
        from ladder import tokenizer
        tokenizer.run(params.tokenizer)
    elif name == "shard":
        from ladder import shard
        shard.run(params.shard)
    elif name == "curriculum":
        from ladder import curriculum
        curriculum.run(params.curriculum, params.seed)
    elif name == "score":
        from ladder import score
        score.run(params.curriculum)
    elif name == "train":
        from ladder import train
        params.size(args.size)
        train.run(params, args.size)
    elif name == "eval":
        from ladder import evaluate
        params.size(args.size)
        evaluate.run(params, args.size)


def _plan(args) -> None:
    from ladder import plan

    params = config.load(args.params)
    for size in args.sizes:
        params.size(size)
    print(plan.table(params, args.sizes or list(params.sizes)))


def _summary(args) -> None:
    from ladder import report
    report.print_summary(args.sizes)


def _curves(args) -> None:
    from ladder import report

    print(f"wrote {report.plot_curves(args.sizes)}")


def _layer_stats(args) -> None:
    from ladder import report

    print(f"wrote {report.plot_layer_stats(args.size)}")


def _snapshots(args) -> None:
    config.write_snapshots(config.load(args.params))


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI; a tool's own options (and its torch import) are added only when `command` names it."""
    p = argparse.ArgumentParser(prog="ladder", description="Train GPT models up a ladder of sizes, reproducibly.")
    p.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")
    helps = {
        "download": "fetch the corpus (data.source) into data/raw/",
        "subset": "sample, deduplicate and split into train/val (data/subset/)",
        "tokenizer": "train a byte-level BPE tokenizer on the train split (data/tokenizer/)",
        "shard": "tokenize both splits into binary shards (data/shards/)",
        "curriculum": "write the base staging plan training follows (data/curriculum/base/)",
        "score": "order documents by a trained size's loss: the scored plan (data/curriculum/scored/)",
        "train": "train one size (results/<size>/)",
        "eval": "evaluate one trained size (results/<size>/eval.json)",
    }
    for name in STAGES:
        s = sub.add_parser(name, help=helps[name], description=helps[name])
        if name in config.PER_SIZE:
            s.add_argument("--size", required=True, help="a size under sizes: in params.yaml")
        s.set_defaults(func=lambda a, n=name: _stage(n, a))
    s = sub.add_parser("plan", help="parameters, FLOPs, memory and estimated hours per size, on this device and common GPUs")
    s.add_argument("sizes", nargs="*", help="sizes to plan (default: every size in params.yaml)")
    s.set_defaults(func=_plan)
    for name, (module, help_) in TOOLS.items():
        s = sub.add_parser(name, help=help_, description=help_)
        if name == command:
            tool = importlib.import_module(f"ladder.{module}")
            tool.add_arguments(s)
            s.set_defaults(func=tool.main)
    s = sub.add_parser("summary", help="print a table of eval results")
    s.add_argument("sizes", nargs="*", help="sizes to show (default: every results/*/eval.json)")
    s.set_defaults(func=_summary)
    s = sub.add_parser("curves", help="plot loss against tokens for every size (results/curves.png)")
    s.add_argument("sizes", nargs="*", help="sizes to show (default: every trained size)")
    s.set_defaults(func=_curves)
    s = sub.add_parser("layer-stats", help="plot per-layer activation and gradient statistics over training")
    s.add_argument("--size", required=True, help="a trained size")
    s.set_defaults(func=_layer_stats)
    s = sub.add_parser("snapshots", help="refresh .ladder/params/ (the Snakefile does this itself)")
    s.set_defaults(func=_snapshots)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    argv = sys.argv[1:] if argv is None else argv
    args = parser(next((a for a in argv if a in TOOLS), None)).parse_args(argv)
    try:
        args.func(args)
    except LadderError as e:
        print(f"ladder {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
