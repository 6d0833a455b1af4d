"""The pipeline's stages, one record each: the one place a stage is described.

Everything else is a view of these records: the CLI's stage commands, the params slice and input
manifests each stage's stamp hashes (stamps.py), the large outputs checked against their manifests
(intact.py), the jobs the Snakefile snapshots, and dvc.yaml, which `ladder dag --write` generates
(tests/unit/test_dag.py holds it current). The Snakemake rules (workflow/rules/*.smk) are written by
hand, because a rule is read as the DAG, and tests/pipeline/test_graph.py holds them to the records.

Adding a stage: its record below, its module in stages/, its rule in workflow/rules/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ladder.pipeline import paths

if TYPE_CHECKING:  # `ladder --help` reads the records: pydantic is imported only by what loads params
    from ladder.pipeline.config import Params


@dataclass(frozen=True)
class Names:
    """What a stage's files are named by. For a job: its run's name (size, cell or rung), the plan a size
    trains on, the scorer, the sweep's cells and the rungs. In dvc.yaml: DVC's template variables, and
    None for cells and rungs, whose folder stands for them (a DVC matrix cannot list its members)."""

    run: str | None = None
    plan: str = "base"
    scorer: str = ""
    cells: tuple[str, ...] | None = None
    rungs: tuple[str, ...] | None = None
    replicas: tuple[str, ...] | None = None
    variant: str | None = None  # an arm's (its run's first part)


@dataclass(frozen=True)
class Stage:
    name: str
    module: str  # ladder/stages/<module>.py
    help: str  # `ladder --help`; for cell and rung, what a job is
    params: tuple[str, ...]  # the keys it reads; {run} is its size's name
    reads: Callable[[Names], list[Path]]  # its inputs, large files and manifests, as dvc.yaml lists them
    writes: Callable[[Names], list[Path]]  # its outputs, as both tools declare them
    manifest: Callable[[Names], Path]  # the output recording what it was built from (stamps.py)
    # (large output, the sha256 its manifest recorded): what intact.py checks
    hashed: Callable[[dict, Names], list[tuple[Path, str]]] = lambda m, n: []
    per: str | None = None  # None: one job; "size", "cell", "rung", "replica", "arm" or "variant": one job each
    keeps: Callable[[Names], list[Path]] = lambda n: []  # outputs that outlive a run (checkpoints): DVC's alone
    metrics: Callable[[Names], list[Path]] = lambda n: []  # which of `writes` dvc.yaml calls metrics
    plots: Callable[[Names], dict[Path, str]] = lambda n: {}  # curve files of `writes` -> y label
    note: str = ""  # a comment for dvc.yaml

    @property
    def command(self) -> str:
        """The `ladder` command that runs it: a cell and a rung are trainings."""
        return "train" if self.module == "train" and self.per != "size" else self.name


SHARDS = [paths.SHARDS["train"], paths.SHARDS["val"], paths.SHARD_INDEX]


def _trains_on(plan: str) -> list[Path]:
    return [*SHARDS, paths.PlanFiles(plan).order, paths.PlanFiles(plan).plan]


def _loss_run(
    name: str, help: str, params: tuple[str, ...], files: Callable[[Names], paths.RunFiles], note: str
) -> Stage:
    """A sweep cell, a scaling rung, a replica or an arm: the train stage's code on the base plan, one job
    per name. Their result is their loss, so they keep no model."""
    return Stage(
        name=name,
        module="train",
        help=help,
        params=params,
        per=name,
        reads=lambda n: _trains_on("base"),
        writes=lambda n: [files(n).config, files(n).summary, files(n).live],
        manifest=lambda n: files(n).summary,
        keeps=lambda n: [files(n).ckpt],
        note=note,
    )


_RECORDS = [
    Stage(
        name="download",
        module="download",
        help="fetch the corpus (data.source) into data/raw/",
        params=("data",),
        reads=lambda n: [paths.EMBEDDED, paths.EMBEDDED_SUMS],
        writes=lambda n: [paths.RAW_DOCS, paths.RAW_MANIFEST],
        manifest=lambda n: paths.RAW_MANIFEST,
        hashed=lambda m, n: [(paths.RAW_DOCS, m["sha256"])],
    ),
    Stage(
        name="subset",
        module="subset",
        help="sample, deduplicate and split into train/val (data/subset/)",
        params=("seed", "subset"),
        reads=lambda n: [paths.RAW_DOCS, paths.RAW_MANIFEST],
        writes=lambda n: [*paths.SPLITS.values(), paths.SUBSET_STATS],
        manifest=lambda n: paths.SUBSET_STATS,
        hashed=lambda m, n: [(paths.SPLITS[s], m["sha256"][s]) for s in paths.SPLITS],
    ),
    Stage(
        name="tokenizer",
        module="tokenizer",
        help="train a byte-level BPE tokenizer on the train split (data/tokenizer/)",
        params=("tokenizer",),
        reads=lambda n: [*paths.SPLITS.values(), paths.SUBSET_STATS],
        writes=lambda n: [paths.TOKENIZER, paths.TOKENIZER_REPORT],
        manifest=lambda n: paths.TOKENIZER_REPORT,
        hashed=lambda m, n: [(paths.TOKENIZER, m["sha256"])],
    ),
    Stage(
        name="shard",
        module="shard",
        help="tokenize both splits into binary shards (data/shards/)",
        params=("shard",),
        reads=lambda n: [*paths.SPLITS.values(), paths.SUBSET_STATS, paths.TOKENIZER, paths.TOKENIZER_REPORT],
        writes=lambda n: SHARDS,
        manifest=lambda n: paths.SHARD_INDEX,
        hashed=lambda m, n: [(paths.SHARDS[s] / f["file"], f["sha256"]) for s in paths.SHARDS for f in m[s]["shards"]],
    ),
    Stage(
        name="curriculum",
        module="curriculum",
        help="write the base staging plan training follows (data/curriculum/base/)",
        params=("seed", "curriculum.warmup", "curriculum.order", "curriculum.direction"),
        reads=lambda n: [paths.SHARDS["train"], paths.SHARD_INDEX],
        writes=lambda n: [paths.PlanFiles("base").order, paths.PlanFiles("base").plan],
        manifest=lambda n: paths.PlanFiles("base").plan,
        hashed=lambda m, n: [(paths.PlanFiles("base").order, m["order_sha256"])],
    ),
    Stage(
        name="score",
        module="score",
        help="order documents by a trained size's loss: the scored plan (data/curriculum/scored/)",
        params=("curriculum.warmup", "curriculum.scorer", "curriculum.direction"),
        reads=lambda n: [
            paths.SHARDS["train"],
            paths.SHARD_INDEX,
            paths.RunFiles(n.scorer).model,
            paths.RunFiles(n.scorer).config,
            paths.RunFiles(n.scorer).summary,
            paths.TOKENIZER,
            paths.TOKENIZER_REPORT,
        ],
        writes=lambda n: [
            paths.PlanFiles("scored").order,
            paths.PlanFiles("scored").plan,
            paths.PlanFiles("scored").scores,
        ],
        manifest=lambda n: paths.PlanFiles("scored").plan,
        hashed=lambda m, n: [(paths.PlanFiles("scored").order, m["order_sha256"])],
        note="the scorer's trained model orders the documents for sizes on the scored plan",
    ),
    Stage(
        name="train",
        module="train",
        help="train one size (results/<size>/), sweep cell (results/sweep/cells/<cell>/) or "
        "scaling rung (results/scaling/rungs/<rung>/)",
        params=("seed", "lr", "train", "sizes.{run}", "pipeline.sizes.{run}"),
        per="size",
        reads=lambda n: _trains_on(n.plan),
        writes=lambda n: [(s := paths.RunFiles(n.run)).model, s.config, s.summary, s.live, *s.curves.values()],
        manifest=lambda n: paths.RunFiles(n.run).summary,
        hashed=lambda m, n: [(paths.RunFiles(n.run).model, m["model_sha256"])],
        keeps=lambda n: [paths.RunFiles(n.run).ckpt],
        plots=lambda n: dict(zip(paths.RunFiles(n.run).curves.values(), ("train loss", "val loss"))),
    ),
    Stage(
        name="eval",
        module="evaluate",
        help="evaluate one trained size and score its prediction (results/<size>/eval.json)",
        params=("seed", "eval"),
        per="size",
        reads=lambda n: [
            (s := paths.RunFiles(n.run)).model,
            s.config,
            s.summary,
            s.prediction,
            *s.curves.values(),
            paths.SHARDS["val"],
            paths.SHARD_INDEX,
            paths.SPLITS["val"],
            paths.SUBSET_STATS,
            paths.TOKENIZER,
            paths.TOKENIZER_REPORT,
        ],
        writes=lambda n: [(s := paths.RunFiles(n.run)).eval, s.provenance, s.samples, s.figure],
        manifest=lambda n: paths.RunFiles(n.run).provenance,
        metrics=lambda n: [paths.RunFiles(n.run).eval],
    ),
    _loss_run(
        "cell",
        "one run of the learning-rate sweep: shape x parametrization x lr x seed",
        ("train", "sweep.head_dim", "sweep.train"),
        lambda n: paths.cell(n.run),
        "the learning-rate sweep's runs (workflow/rules/sweep.smk); shape, lr and seed are in the name",
    ),
    Stage(
        name="sweep",
        module="sweep",
        help="report the learning-rate sweep: best lr per shape (results/sweep/optima.json, sweep.png)",
        params=("sweep.shapes", "sweep.parametrizations", "sweep.lrs", "sweep.seeds"),
        reads=lambda n: [paths.cell(c).summary for c in n.cells] if n.cells is not None else [paths.SWEEP_CELLS],
        writes=lambda n: [paths.SWEEP_OPTIMA, paths.SWEEP_FIGURE],
        manifest=lambda n: paths.SWEEP_OPTIMA,
        note="best lr per shape and parametrization; not a metrics file: its numbers would swamp `dvc exp show`",
    ),
    _loss_run(
        "rung",
        "one run of the scaling ladder: a shape at a token budget, on the shipped recipe",
        ("seed", "lr", "train", "scaling.head_dim", "scaling.train"),
        lambda n: paths.rung(n.run),
        "the scaling ladder's runs (workflow/rules/scaling.smk); shape and budget are in the name",
    ),
    Stage(
        name="fit",
        module="fit",
        help="fit the scaling law to the rungs (results/scaling/fit.json, fit.png)",
        params=(
            "scaling.shapes",
            "scaling.budgets",
            "scaling.holdout",
            "scaling.n",
            "scaling.huber_delta",
            "scaling.bootstrap",
            "scaling.interval",
        ),
        reads=lambda n: [
            paths.SHARD_INDEX,
            *([paths.rung(r).summary for r in n.rungs] if n.rungs is not None else [paths.SCALING_RUNGS]),
        ],
        writes=lambda n: [paths.FIT, paths.FIT_FIGURE],
        manifest=lambda n: paths.FIT,
        note="the law per budget fitted to every rung's final val loss; not a metrics file, as the sweep's",
    ),
    _loss_run(
        "replica",
        "a comparison's rung again at another seed, either side (compare.seeds): its noise floor",
        ("lr", "train", "scaling.head_dim", "scaling.train", "compare.variants.{variant}"),
        lambda n: paths.replica(n.run, n.variant),
        "the baseline's noise shapes at compare.seeds (workflow/rules/compare.smk); shape, budget, seed: the name",
    ),
    _loss_run(
        "arm",
        "a variant's rung: a scaling rung with the changes of one of compare.variants",
        ("seed", "lr", "train", "scaling.head_dim", "scaling.train", "compare.variants.{variant}"),
        lambda n: paths.arm(n.run, n.variant),
        "each variant's rungs (workflow/rules/compare.smk); variant, shape and budget are in the name",
    ),
    Stage(
        name="ab",
        module="ab",
        help="compare a variant's law with the baseline's, size by size (results/compare/<variant>/compare.json)",
        params=(
            "seed",
            "scaling.shapes",
            "scaling.budgets",
            "scaling.n",
            "scaling.huber_delta",
            "scaling.bootstrap",
            "scaling.interval",
            "compare.noise_shapes",
            "compare.seeds",
            "compare.variants.{run}",
            "train",
            "sizes",
        ),
        per="variant",
        reads=lambda n: [
            paths.SHARD_INDEX,
            *(
                [paths.rung(r).summary for r in n.rungs]
                + [paths.replica(r).summary for r in n.replicas if variant_of("replica", r) == n.run]
                + [paths.arm(f"{n.run}-{r}").summary for r in n.rungs]
                if n.rungs is not None
                else [paths.SCALING_RUNGS, paths.CompareFiles(n.run).arms, paths.CompareFiles(n.run).replicas]
            ),
        ],
        writes=lambda n: [paths.CompareFiles(n.run).report, paths.CompareFiles(n.run).figure],
        manifest=lambda n: paths.CompareFiles(n.run).report,
        note="a variant against the baseline: both laws, the seed noise and a verdict per size (`ladder compare`)",
    ),
    Stage(
        name="predict",
        module="predict",
        help="predict a size's final val loss from the fit, before it trains (results/<size>/prediction.json)",
        params=("train", "sizes.{run}"),
        per="size",
        reads=lambda n: [paths.FIT, paths.SHARD_INDEX],
        writes=lambda n: [paths.RunFiles(n.run).prediction],
        manifest=lambda n: paths.RunFiles(n.run).prediction,
        note="each size's final val loss from the fit alone (its N and D, never its training)",
    ),
]
STAGES: dict[str, Stage] = {s.name: s for s in _RECORDS}


def names(params: Params, stage: str, run: str | None = None) -> Names:
    """A job's names, from params."""
    return Names(
        run=run,
        plan=params.plan_for(run) if STAGES[stage].per == "size" else "base",
        scorer=params.curriculum.scorer,
        cells=tuple(params.sweep.cells()),
        rungs=tuple(params.scaling.rungs()),
        replicas=tuple(params.compare.replicas(params.scaling.budgets)),
        variant=variant_of(stage, run),
    )


def variant_of(stage: str, run: str | None) -> str | None:
    """The variant an arm's, a replica's or an ab job's run belongs to (results/compare/<variant>/...)."""
    per = STAGES[stage].per
    if per == "variant":
        return run
    return folder(stage, run).folder.parent.parent.name if per in ("arm", "replica") else None


def runs(params: Params, stage: str) -> list[str | None]:
    """The names a stage has a job for: every size, cell or rung, or the one job."""
    per, rungs = STAGES[stage].per, params.scaling.rungs()
    return {
        None: [None],
        "size": list(params.sizes),
        "cell": params.sweep.cells(),
        "rung": rungs,
        "replica": params.compare.replicas(params.scaling.budgets),
        "arm": [f"{v}-{r}" for v in params.compare.variants for r in rungs],
        "variant": list(params.compare.variants),
    }[per]


def jobs(params: Params) -> list[tuple[str, str | None]]:
    """Every (stage, run) pair."""
    return [(stage, run) for stage in STAGES for run in runs(params, stage)]


def job_name(stage: str, run: str | None = None) -> str:
    """A job as DVC names it: train@tiny, rung@w64-d2-819200, fit."""
    return f"{stage}@{run}" if run else stage


def keys(stage: str, run: str | None = None) -> list[str]:
    return [k.format(run=run, variant=variant_of(stage, run)) for k in STAGES[stage].params]


def lookup(raw: dict, dotted: str) -> Any:
    """The value at a dotted key of params as a dict."""
    node: Any = raw
    while dotted not in node:  # a key may hold dots of its own: a sweep cell's name has its lr
        head, dotted = dotted.split(".", 1)
        node = node[head]
    return node[dotted]


def params_of(params: Params, stage: str, run: str | None = None) -> dict[str, Any]:
    """The resolved values a job depends on, keyed by their dotted names."""
    raw = params.model_dump(mode="json")
    raw["pipeline"]["sizes"] = {s: params.plan_for(s) for s in params.sizes}  # unlisted sizes: base
    return {k: lookup(raw, k) for k in keys(stage, run)}


def outputs(stage: str, run: str | None = None) -> list[Path]:
    return STAGES[stage].writes(Names(run=run, variant=variant_of(stage, run)))


def manifest(stage: str, run: str | None = None) -> Path:
    return STAGES[stage].manifest(Names(run=run, variant=variant_of(stage, run)))


def folder(stage: str, run: str) -> paths.RunFiles:
    """The folder a training run of `stage` (train, cell or rung) writes."""
    per = STAGES[stage].per
    return {"size": paths.RunFiles, "cell": paths.cell, "rung": paths.rung, "replica": paths.replica, "arm": paths.arm}[
        per
    ](run)


def inputs(params: Params, stage: str, run: str | None = None) -> list[Path]:
    """The small files that stand for a job's inputs in its stamp: the manifests among what it reads
    (each holds the sha256 of its stage's large outputs) and the embedded corpus's checksum."""
    n = names(params, stage, run)
    arms = tuple(f"{v}-{r}" for v in params.compare.variants for r in n.rungs)
    small = _small_files(tuple(params.sizes), n.cells, n.rungs, n.replicas, arms, tuple(params.compare.variants))
    return [f for f in STAGES[stage].reads(n) if f in small]


@cache
def _small_files(
    sizes: tuple[str, ...],
    cells: tuple[str, ...],
    rungs: tuple[str, ...],
    replicas: tuple[str, ...],
    arms: tuple[str, ...],
    variants: tuple[str, ...],
) -> frozenset[Path]:
    """Every job's manifest and the corpus checksum, once per set of jobs: the Snakefile asks for each job's
    inputs on every invocation, and a sweep has hundreds of jobs."""
    runs = {None: [None], "size": sizes, "cell": cells, "rung": rungs, "replica": replicas, "arm": arms}
    runs["variant"] = variants
    return frozenset({paths.EMBEDDED_SUMS} | {manifest(s, r) for s in STAGES for r in runs[STAGES[s].per]})


# dvc.yaml: how a stage with a job per size, cell or rung loops, and the names its files get there
LOOPS = {
    "size": ("foreach: ${pipeline.sizes}", Names(run="${key}", plan="${item}")),
    "cell": (
        "matrix:\n      shape: ${sweep.shapes}\n      param: ${sweep.parametrizations}\n"
        "      lr: ${sweep.lrs}\n      seed: ${sweep.seeds}",
        Names(run="${item.shape}-${item.param}-${item.lr}-${item.seed}"),
    ),
    "rung": (
        "matrix:\n      shape: ${scaling.shapes}\n      budget: ${scaling.budgets}",
        Names(run="${item.shape}-${item.budget}"),
    ),
    "replica": (
        "matrix:\n      variant: ${compare.variants}\n"
        f"      side: [{', '.join(paths.SIDES)}]\n"
        "      shape: ${compare.noise_shapes}\n      budget: ${scaling.budgets}\n      seed: ${compare.seeds}",
        Names(run="${item.variant}-${item.side}-${item.shape}-${item.budget}-${item.seed}", variant="${item.variant}"),
    ),
    "arm": (
        "matrix:\n      variant: ${compare.variants}\n      shape: ${scaling.shapes}\n      budget: ${scaling.budgets}",
        Names(run="${item.variant}-${item.shape}-${item.budget}", variant="${item.variant}"),
    ),
    "variant": ("foreach: ${compare.variants}", Names(run="${key}")),
}
HEADER = """\
# Generated from src/ladder/pipeline/dag.py by `ladder dag --write`: edit the stage records there, not this.
# The ladder pipeline for DVC: `dvc repro`, `dvc exp run -S lr=3e-4`, `dvc exp show`, `dvc plots diff`.
# workflow/rules/*.smk describe the same stages for Snakemake. train@, predict@ and eval@ run for the sizes
# in params.yaml's pipeline.sizes, each on the curriculum plan named there (base or scored);
# `dvc exp run -S '+pipeline.sizes.small=scored'` climbs further.
"""


def dvc_yaml(code_files: Callable[[str], tuple[str, ...]]) -> str:
    """dvc.yaml's text: every stage, its deps (inputs, then the modules it runs: `code_files`), params and
    outputs, all persistent (a stage replaces its outputs atomically, so DVC must not delete them first)."""
    out = [HEADER, "stages:"]
    for s in STAGES.values():
        loop, n = LOOPS.get(s.per, (None, Names(scorer="${curriculum.scorer}")))
        each = bool(loop) and loop.startswith("foreach")
        pad = "      " if each else "    "
        out.append(f"  {s.name}:" + (f"   # {s.note}" if s.note else ""))
        if loop:
            out.append(f"    {loop}")
        if each:
            out.append("    do:")
        flag = f" --{s.per}" if s.per else ""
        out.append(f"{pad}cmd: ladder {s.command}{flag}{' ' + n.run if n.run else ''}")
        out.append(f"{pad}deps:")
        out += [f"{pad}  - {p}" for p in [*map(str, s.reads(n)), *code_files(s.name)]]
        out.append(f"{pad}params:")
        out += [f"{pad}  - {k.format(run=n.run, variant=n.variant)}" for k in s.params]
        plots, metrics = s.plots(n), s.metrics(n)
        outs = [p for p in s.writes(n) if p not in plots and p not in metrics]
        out.append(f"{pad}outs:")
        out += [f"{pad}  - {p}: {{persist: true}}" for p in outs + s.keeps(n)]
        if metrics:
            out.append(f"{pad}metrics:")
            out += [f"{pad}  - {p}: {{persist: true}}" for p in metrics]
        if plots:
            out.append(
                f"{pad}plots:   # per size, so `dvc plots show` / `dvc plots diff HEAD <exp>` draw those that exist"
            )
            for p, label in plots.items():
                out += [
                    f"{pad}  - {p}:",
                    f"{pad}      persist: true",
                    f'{pad}      title: "{n.run}: {label} ({n.plan} plan)"',
                    f"{pad}      x: tokens",
                    f"{pad}      y: {Path(p).stem}",
                    f"{pad}      y_label: {label}",
                ]
        out.append("")
    return "\n".join(out)
