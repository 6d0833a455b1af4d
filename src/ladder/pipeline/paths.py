"""Every file the pipeline reads or writes, named once.

Paths are relative to the project root (commands run there). Which stage reads and writes which is
dag.py's business; the Snakemake rules spell the same paths because they are read as the DAG
(tests/pipeline/test_graph.py holds them to dag.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PARAMS = Path("params.yaml")

EMBEDDED = Path("data/embedded/wiki-small.txt.xz")
EMBEDDED_SUMS = Path("data/embedded/SHA256SUMS")
EMBEDDED_README = Path("data/embedded/README.md")

RAW_DOCS = Path("data/raw/docs.jsonl")
RAW_MANIFEST = Path("data/raw/manifest.json")

SPLITS = {"train": Path("data/subset/train.jsonl"), "val": Path("data/subset/val.jsonl")}
SUBSET_STATS = Path("data/subset/stats.json")

TOKENIZER = Path("data/tokenizer/tokenizer.json")
TOKENIZER_REPORT = Path("data/tokenizer/report.json")

SHARDS = {"train": Path("data/shards/train"), "val": Path("data/shards/val")}
SHARD_INDEX = Path("data/shards/index.json")

CURRICULUM = Path("data/curriculum")
RESULTS = Path("results")
LM_EVAL_TASKS = Path("workflow/lm_eval")  # lm-eval task files (`ladder lm-eval`)
LM_EVAL_DATA = RESULTS / "lm_eval"  # the documents those tasks read
SNAPSHOTS = Path(".ladder/params")  # the params slices Snakemake watches (stamps.write_snapshots)
LOCKS = Path(".ladder/locks")  # one per stage job, held while it runs (pipeline/lock.py)
LOG = {"csv": RESULTS / "log.csv", "md": RESULTS / "log.md"}  # `ladder log`: one row per run

SWEEP = RESULTS / "sweep"
SWEEP_CELLS = SWEEP / "cells"  # one folder per cell, laid out as a size's (RunFiles)
SWEEP_OPTIMA = SWEEP / "optima.json"
SWEEP_FIGURE = SWEEP / "sweep.png"

SCALING = RESULTS / "scaling"
SCALING_RUNGS = SCALING / "rungs"  # one folder per rung, laid out as a size's (RunFiles)
FIT = SCALING / "fit.json"
FIT_FIGURE = SCALING / "fit.png"

COMPARE = RESULTS / "compare"  # one folder per variant of compare.variants
SIDES = ("baseline", "variant")  # a comparison's two sides


@dataclass(frozen=True)
class PlanFiles:
    """A curriculum plan: `base` (the curriculum stage) or `scored` (the score stage)."""

    name: str

    folder = property(lambda self: CURRICULUM / self.name)
    plan = property(lambda self: self.folder / "plan.json")
    order = property(lambda self: self.folder / "order.npy")
    scores = property(lambda self: self.folder / "scores.npy")  # scored only: each document's loss


@dataclass(frozen=True)
class RunFiles:
    """What one size's train, predict and eval stages write, and what the tools write beside it; a sweep
    cell and a scaling rung are laid out the same way under results/sweep/cells/ and results/scaling/rungs/."""

    name: str
    root: Path = RESULTS

    folder = property(lambda self: self.root / self.name)
    model = property(lambda self: self.folder / "model.safetensors")
    config = property(lambda self: self.folder / "config.json")
    summary = property(lambda self: self.folder / "train.json")
    live = property(lambda self: self.folder / "live")
    # train and val loss by tokens: the size's plots in dvc.yaml
    curves = property(lambda self: {m: self.folder / f"{m}.tsv" for m in ("loss", "val_loss")})
    ckpt = property(lambda self: self.folder / "ckpt")
    prediction = property(lambda self: self.folder / "prediction.json")  # from the fit, before training
    eval = property(lambda self: self.folder / "eval.json")  # the headline metrics (dvc.yaml's metrics:)
    provenance = property(lambda self: self.folder / "eval_provenance.json")  # the rest, and built_from
    samples = property(lambda self: self.folder / "samples.md")
    figure = property(lambda self: self.folder / "curves.png")  # eval's: the curves and the prediction
    layer_stats = property(lambda self: self.folder / "live" / "layer_stats.tsv")
    hf = property(lambda self: self.folder / "hf")
    lm_eval = property(lambda self: self.folder / "lm_eval.json")
    attention = property(lambda self: self.folder / "attention.png")


def cell(name: str) -> RunFiles:
    return RunFiles(name, SWEEP_CELLS)


def rung(name: str) -> RunFiles:
    return RunFiles(name, SCALING_RUNGS)


@dataclass(frozen=True)
class CompareFiles:
    """One variant's comparison: its rungs (arms) and the report."""

    name: str

    folder = property(lambda self: COMPARE / self.name)
    arms = property(lambda self: self.folder / "rungs")
    replicas = property(lambda self: self.folder / "replicas")  # both sides' noise shapes at compare.seeds
    report = property(lambda self: self.folder / "compare.json")
    figure = property(lambda self: self.folder / "compare.png")


def arm(name: str, variant: str | None = None) -> RunFiles:
    """A variant's rung, variant-shape-budget: results/compare/<variant>/rungs/<shape>-<budget>/. `variant`:
    the name's first part, when the name is a template (dvc.yaml's) rather than a run's."""
    if variant is None:
        variant = re.fullmatch(r"(.+)-w\d+-d\d+-\d+", name)[1]
    return RunFiles(name.removeprefix(f"{variant}-"), CompareFiles(variant).arms)


def replica(name: str, variant: str | None = None) -> RunFiles:
    """A replica, variant-side-shape-budget-seed: results/compare/<variant>/replicas/<side>-<shape>-<budget>-<seed>/."""
    if variant is None:
        variant = re.fullmatch(r"(.+)-(?:baseline|variant)-w\d+-d\d+-\d+-\d+", name)[1]
    return RunFiles(name.removeprefix(f"{variant}-"), CompareFiles(variant).replicas)
