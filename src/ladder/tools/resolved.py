"""`ladder config --size S` (or `--rung R`, `--cell C`): the settings one run trains with, resolved.

A size's train settings are the shared train: block with its own sizes.<size>.train overrides; a
rung's and a cell's are built from their names and scaling.train or sweep.train. Working that out by
hand is error-prone, so this prints the merged result as YAML, each train setting that is not the
shared block's marked with where it was set. What it costs: `ladder plan`.
"""

from __future__ import annotations

import yaml

from ladder.pipeline import config
from ladder.pipeline.dag import STAGES, keys

# the stages that train (a size, a sweep cell, a scaling rung), by the option naming the run
RUNS = {s.per: s for s in STAGES.values() if s.module == "train"}


def resolved(params: config.Params, stage: str, name: str) -> tuple[dict, dict[str, str]]:
    """The run's settings as one document, and where each train setting the run sets itself comes from."""
    run, record = params.derived(stage, name), STAGES[stage]
    size, train = run.size(name), run.train_for(name)
    doc = {
        "run": name,
        "kind": record.per,
        "seed": run.seed,
        "lr": run.lr,
        "plan": run.plan_for(name),
        "model": {"n_layer": size.n_layer, "n_head": size.n_head, "n_embd": size.n_embd},
        "train": train.model_dump(mode="json"),
    }
    own = [k for k in keys(stage, name) if "." in k and not k.startswith("pipeline.")]  # its blocks
    origin = f"{own[0]}.train" if record.per == "size" else ", ".join([f"the {record.per}'s name", *own])
    return doc, dict.fromkeys([k for k in size.train if k != "lr"], origin)  # a size's own lr is the run's lr above


def render(doc: dict, origins: dict[str, str]) -> str:
    lines = yaml.safe_dump({k: v for k, v in doc.items() if k != "train"}, sort_keys=False).splitlines()
    lines.append("train:  # the shared train: block; a marked setting is the run's own")
    for key, value in doc["train"].items():
        text = yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=True, width=1 << 16).strip()
        text = text.removeprefix("{").removesuffix("}")
        lines.append(f"  {text}" + (f"  # {origins[key]}" if key in origins else ""))
    return "\n".join(lines)


def add_arguments(p) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    for per in RUNS:
        which.add_argument(f"--{per}", help=f"the {per} to resolve, as `ladder train --{per}` names it")


def main(args) -> None:
    params = config.load(args.params)
    per, name = next((per, n) for per in RUNS if (n := getattr(args, per)))
    print(render(*resolved(params, RUNS[per].name, name)))
