"""`ladder dag`: the stages as their records say (pipeline/dag.py), and dvc.yaml generated from them.

ladder dag            one line per stage: its jobs, command, params keys and outputs
ladder dag --write    write dvc.yaml from the records (after adding or changing a stage)
ladder dag --check    exit 1 if dvc.yaml is not what --write would write
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ladder.pipeline import dag, stamps
from ladder.pipeline.files import LadderError, atomic_write_text

DVC_YAML = Path("dvc.yaml")


def add_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group()
    what.add_argument("--write", action="store_true", help="write dvc.yaml from the stage records")
    what.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml differs from what --write writes")


def main(args) -> None:
    text = dag.dvc_yaml(stamps.code_files)
    if args.write:
        atomic_write_text(DVC_YAML, text)
        print(f"wrote {DVC_YAML} ({len(dag.STAGES)} stages)")
    elif args.check:
        if not DVC_YAML.is_file() or DVC_YAML.read_text() != text:
            raise LadderError(f"{DVC_YAML}: not what the stage records say; run `ladder dag --write`")
        print(f"{DVC_YAML}: current")
    else:
        for s in dag.STAGES.values():
            jobs = f"one per {s.per}" if s.per else "one job"
            outs = ", ".join(str(p) for p in s.writes(dag.Names(run=f"<{s.per}>", variant="<variant>")))
            print(f"{s.name:<11} {jobs:<15} ladder {s.command:<11} params: {', '.join(s.params)}\n{'':<11} -> {outs}")
