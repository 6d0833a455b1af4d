"""`ladder config --size S` (or `--rung R`, `--cell C`): the settings one run trains with, resolved.

A size's train settings are the shared train: block with its own sizes.<size>.train overrides; a
rung's and a cell's are built from their names and scaling.train or sweep.train. Working that out by
hand is error-prone, so this prints the merged result as YAML, each train setting that is not the
shared block's marked with where it was set. What it costs: `ladder plan`.
"""

from __future__ import annotations

import yaml

from ladder.pipeline import config

# where a run's overrides of the train: block come from, by the stage that trains it
ORIGIN = {"train": "sizes.{name}.train", "rung": "scaling (train, budgets, head_dim)", "cell": "sweep (train, cell)"}


def resolved(params: config.Params, stage: str, name: str) -> tuple[dict, dict[str, str]]:
    """The run's settings as one document, and where each train setting the run sets itself comes from."""
    run = params.derived(stage, name)
    size, train = run.size(name), run.train_for(name)
    doc = {
        "run": name,
        "kind": {"train": "size", "rung": "scaling rung", "cell": "sweep cell"}[stage],
        "seed": run.seed,
        "lr": run.lr,
        "plan": run.plan_for(name),
        "model": {"n_layer": size.n_layer, "n_head": size.n_head, "n_embd": size.n_embd},
        "train": train.model_dump(mode="json"),
    }
    return doc, {k: ORIGIN[stage].format(name=name) for k in size.train}


def render(doc: dict, origins: dict[str, str]) -> str:
    lines = yaml.safe_dump({k: v for k, v in doc.items() if k != "train"}, sort_keys=False).splitlines()
    lines.append("train:  # the shared train: block; a marked setting is overridden")
    for key, value in doc["train"].items():
        text = yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=True, width=1 << 16).strip()
        text = text.removeprefix("{").removesuffix("}")
        lines.append(f"  {text}" + (f"  # {origins[key]}" if key in origins else ""))
    return "\n".join(lines)


def add_arguments(p) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--size", help="a size under sizes: in params.yaml")
    which.add_argument("--rung", help="a rung of the scaling ladder, shape-budget (e.g. w64-d2-819200)")
    which.add_argument("--cell", help="a cell of the learning-rate sweep, shape-parametrization-lr-seed")


def main(args) -> None:
    params = config.load(args.params)
    stage, name = next((s, n) for s, n in (("train", args.size), ("rung", args.rung), ("cell", args.cell)) if n)
    print(render(*resolved(params, stage, name)))
