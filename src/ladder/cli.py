"""`ladder <command>`: the pipeline's stages and the tools around them, all registered one way.

Every command is a module with `main(args)` and, if it takes options, `add_arguments(parser)`:
stages live in ladder/stages/ (the only modules the workflow files call; their records in
pipeline/dag.py), tools in ladder/tools/.
Only the module of the command being run is imported, so `ladder --help` stays quick. Expected
failures (bad params, bad input files) print one line naming the key or file and exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from importlib.metadata import PackageNotFoundError, version

from ladder.pipeline import dag, lock
from ladder.pipeline.files import LadderError

# command: (module under ladder/, one line of help): the stages' from their records, then the tools
COMMANDS = {
    **{s.name: (f"stages.{s.module}", s.help) for s in dag.STAGES.values() if s.command == s.name},
    "dag": ("tools.dag", "print the stages as records, or write dvc.yaml from them (--write)"),
    "plan": (
        "tools.plan",
        "parameters, FLOPs, memory and estimated hours per size; with --budget, the N and D "
        "the scaling fit recommends for that compute",
    ),
    "config": ("tools.resolved", "print the settings one size, rung or cell trains with, overrides merged and marked"),
    "compare": (
        "tools.compare",
        "does a change hold up the ladder? its rungs beside the baseline's, both laws, a verdict per size",
    ),
    "summary": ("tools.summary", "print a table of eval results"),
    "log": ("tools.log", "the experiment log: a row per size, DVC experiment and rung (results/log.csv, log.md)"),
    "curves": ("tools.curves", "plot loss against tokens for every size (results/curves.png)"),
    "layer-stats": ("tools.layer_stats", "plot per-layer activation and gradient statistics over training"),
    "generate": ("tools.generate", "sample text from a trained size, streamed as it is generated"),
    "sanity": ("tools.sanity", "check a size before a long run: initial loss, gradient flow, overfitting one batch"),
    "export-hf": ("tools.export", "write a trained size as a Hugging Face transformers folder (results/<size>/hf/)"),
    "lm-eval": ("tools.lm_eval", "score a size's Hugging Face export with EleutherAI's lm-evaluation-harness, offline"),
    "attention": ("tools.attention", "plot a trained size's attention maps on a prompt (results/<size>/attention.png)"),
    "coord-check": ("tools.coordcheck", "plot activation scales across widths under SP and μP (the coordinate check)"),
}


def installed_version() -> str:
    """The installed package's version; a plain checkout run with PYTHONPATH=src has no metadata."""
    try:
        return version("ladder")
    except PackageNotFoundError:
        return "(a source checkout, not installed)"


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI; the options of `command` (and its imports) are added only when it is the one run."""
    params = argparse.ArgumentParser(add_help=False)
    params.add_argument("--params", default=argparse.SUPPRESS, help="params file (default: params.yaml)")
    p = argparse.ArgumentParser(
        prog="ladder", parents=[params], description="Train GPT models up a ladder of sizes, reproducibly."
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")
    for name, (module, help_) in COMMANDS.items():
        s = sub.add_parser(name, help=help_, description=help_, parents=[params])
        if name == command:
            mod = importlib.import_module(f"ladder.{module}")
            if hasattr(mod, "add_arguments"):
                mod.add_arguments(s)
            s.set_defaults(func=mod.main)
    return p


def check_sizes(args) -> None:
    """Every size a command is given (`--size`, or a list) must be one under sizes: in params.yaml,
    said as such rather than as a missing upstream output."""
    named = [args.size] if getattr(args, "size", None) else getattr(args, "sizes", None) or []
    if named:
        from ladder.pipeline import config

        params = config.load(args.params)
        for size in named:
            params.size(size)


def check_params_first(argv: list[str]) -> None:
    """A stage's params file, checked before the stage's own imports (torch takes seconds to import):
    a bad value stops the stage at once, whichever tool runs it."""
    if "-h" in argv or "--help" in argv:
        return
    from ladder.pipeline import config

    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--params", default="params.yaml")
    config.load(early.parse_known_args(argv)[0].params)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if a in COMMANDS), None)
    stage = command is not None and COMMANDS[command][0].startswith("stages.")
    try:
        # a stage joins the project first, before its imports: a Snakemake run that holds it refuses it
        with lock.project(" ".join(["ladder", *argv])) if stage else contextlib.nullcontext():
            if stage:
                check_params_first(argv)
            args = parser(command).parse_args(argv)
            args.params = getattr(args, "params", "params.yaml")
            check_sizes(args)
            # the job as DVC names it: `train --cell X` is cell@X, `eval --size tiny` eval@tiny
            job = next(
                (
                    dag.job_name(s.name, getattr(args, s.per) if s.per else None)
                    for s in dag.STAGES.values()
                    if s.command == command and (not s.per or getattr(args, s.per, None))
                ),
                command,
            )
            with lock.held(job, " ".join(["ladder", *argv])) if stage else contextlib.nullcontext():
                args.func(args)
    except LadderError as e:
        print(f"ladder {command}: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `ladder dag | head`: the reader has all it wanted
        sys.stderr.close()
        return 0
    except OSError as e:  # a full or read-only disk, a path that cannot be made: name the file
        print(f"ladder {command}: error: {e.filename or '?'}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # outputs are written atomically: nothing half-written is left
        print(
            f"ladder {command}: interrupted; the previous outputs are intact (training resumes from its "
            "last checkpoint)",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
