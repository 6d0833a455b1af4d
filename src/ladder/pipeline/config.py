"""Typed, validated view of params.yaml.

params.yaml is the one source of values: no field here has a default, so a missing key is an error
naming it, never a silent second default. A bad value fails with one line naming the key. Which
keys each stage reads is its record's business (dag.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ladder.pipeline.files import LadderError
from ladder.pipeline.paths import SIDES

PosInt = Annotated[int, Field(gt=0)]
Seed = Annotated[int, Field(ge=0, lt=2**32)]  # what numpy's generators take
HeadDim = Annotated[int, Field(gt=0, multiple_of=2)]  # rotary embeddings rotate pairs of dimensions
Fraction = Annotated[float, Field(gt=0, le=1)]
# What torch can build and `ladder plan` can size, far beyond any model trained so far: a width past about
# 2**30 overflows torch's storage size for the MLP's matrix, a long enough context the RoPE table's (past
# 2**63, torch's integers), and millions of layers take hours to build even on the meta device where the
# plan sizes them. Accepted, each died in the plan with a traceback (or never finished).
Width = Annotated[int, Field(gt=0, le=2**20)]
Depth = Annotated[int, Field(gt=0, le=2**12)]
Context = Annotated[int, Field(gt=0, le=2**24)]


class ConfigError(LadderError):
    """A problem with params.yaml; the message names the key."""


class Strict(BaseModel):
    # every float finite: an infinite time limit or a NaN temperature would pass a one-sided bound,
    # train for hours and then fail to write its JSON
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class HFSource(Strict):
    name: str | None
    config: str | None
    split: str
    text_field: str
    revision: str | None
    timeout_s: Annotated[float, Field(gt=0)]


class Data(Strict):
    source: str  # "embedded", "hf" (see data.hf) or a local file, folder or glob
    format: Literal["auto", "txt", "jsonl", "parquet"]
    text_field: str
    txt_split: Literal["line", "blank_line", "titled"]
    hf: HFSource
    max_docs: PosInt | None
    max_bytes: PosInt | None


class Subset(Strict):
    fraction: Fraction
    max_bytes: PosInt | None
    val_fraction: Annotated[float, Field(gt=0, lt=1)]
    min_chars: Annotated[int, Field(ge=0)]
    max_chars: PosInt | None
    dedup: Literal["exact", "near"]
    near_threshold: Fraction


class Tokenizer(Strict):
    vocab_size: Annotated[int, Field(ge=260, le=1 << 20)]
    min_frequency: PosInt
    sample_bytes: PosInt


class Shard(Strict):
    shard_tokens: PosInt
    max_tokens: PosInt | None


class Phase(Strict):
    seq_len: PosInt
    share: Fraction


class Curriculum(Strict):
    warmup: list[Phase]
    order: Literal["none", "random", "length", "compressibility"]  # the base plan's order
    direction: Literal["easy_first", "hard_first"]
    scorer: str  # the size whose trained model scores documents for the `scored` plan

    @model_validator(mode="after")
    def _shares(self):
        if sum(p.share for p in self.warmup) >= 1:
            raise ValueError("warmup shares must sum to less than 1 (the rest runs at train.seq_len)")
        return self


class Train(Strict):
    seq_len: Context
    batch_tokens: PosInt
    micro_batch: PosInt
    tokens: PosInt | None  # explicit budget; when unset, flops / FLOPs per token, else tokens_per_param x parameters
    flops: Annotated[float, Field(gt=0)] | None  # a compute budget instead (training FLOPs, nn/model.py)
    # bounded so that tokens_per_param x parameters stays a finite number of tokens (Chinchilla: 20)
    tokens_per_param: Annotated[float, Field(gt=0, le=1e6)]
    schedule: Literal["cosine", "wsd"]
    warmup_frac: Annotated[float, Field(ge=0, lt=1)]
    decay_frac: Fraction
    min_lr_frac: Annotated[float, Field(ge=0, le=1)]
    weight_decay: Annotated[float, Field(ge=0)]
    beta1: Annotated[float, Field(ge=0, lt=1)]
    beta2: Annotated[float, Field(ge=0, lt=1)]
    grad_clip: Annotated[float, Field(ge=0)]
    optimizer: Literal["adamw", "muon"]  # muon: Muon for the hidden matrices, AdamW for the rest
    muon_momentum: Annotated[float, Field(ge=0, lt=1)]
    adam_eps: Annotated[float, Field(gt=0)]
    mup: bool
    mup_base_width: PosInt
    mup_base_head_dim: PosInt  # the base model's head_dim (tiny: 128 / 4 heads)
    completep: bool  # depth transfer: residual branches x mup_base_depth / n_layer
    mup_base_depth: PosInt
    tie_weights: bool
    dtype: Literal["auto", "bf16", "fp16", "fp32"]
    compile: Literal["auto", "on", "off"]
    activation_checkpointing: bool
    devices: PosInt  # processes (one per GPU) of one node; > 1 runs the stage under torchrun
    parallel: Literal["ddp", "fsdp"]  # with devices > 1: replicate the model (ddp) or shard it (fsdp)
    fp32_residual: bool  # bf16 autocast: keep the residual stream in float32 (default bf16)
    log_every: PosInt
    eval_every: PosInt
    eval_tokens: PosInt
    checkpoint_every: PosInt
    max_hours: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def _budget(self):
        micro = self.micro_batch * self.seq_len * self.devices
        if self.batch_tokens % micro:
            raise ValueError(
                f"batch_tokens ({self.batch_tokens}) must be a multiple of micro_batch x seq_len x devices "
                f"({self.micro_batch} x {self.seq_len} x {self.devices} = {micro})"
            )
        if self.tokens and self.flops:
            raise ValueError(f"set one budget: tokens ({self.tokens}) or flops ({self.flops:g}), not both")
        if self.optimizer == "muon" and self.parallel == "fsdp" and self.devices > 1:
            raise ValueError("optimizer: muon orthogonalizes whole matrices, which FSDP shards; use parallel: ddp")
        return self


class OwnLr(Strict):
    """A size's own lr (sizes.<name>.train.lr), bounded as the shared one is."""

    lr: Annotated[float, Field(gt=0, le=1)]


class Size(Strict):
    n_layer: Depth
    n_head: PosInt
    n_embd: Width
    # overrides of the shared train: block for this size, and its own lr (train.lr): an experiment on
    # one size that leaves the rungs, and so the fit, at the shared `lr`
    train: dict[str, Any] = {}

    @model_validator(mode="after")
    def _heads(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.n_embd // self.n_head % 2:
            raise ValueError(
                f"the head dimension n_embd / n_head = {self.n_embd // self.n_head} must be even (rotary pairs)"
            )
        return self


class Eval(Strict):
    max_tokens: PosInt
    extra: dict[str, str]  # more held-out text sets: name -> file (txt, jsonl, parquet, compressed)
    cloze_items: Annotated[int, Field(ge=0)]
    cloze_choices: Annotated[int, Field(ge=2)]
    prompts: list[str]
    max_new_tokens: PosInt
    temperature: Annotated[float, Field(ge=0)]
    top_k: PosInt | None
    top_p: Fraction | None


SHAPE = re.compile(r"w(\d+)-d(\d+)")
CELL = re.compile(r"(w\d+-d\d+)-(sp|mup)-(.+)-(\d+)")  # shape-parametrization-lr-seed, as DVC's matrix names it


def shapes(v: list[str]) -> list[str]:
    """A list of w<width>-d<depth> shapes (the sweep's and the scaling ladder's). Zero is refused here:
    a model of no width or depth would fail later, as a size, under a key no params block has."""
    for shape in v:
        if not (m := SHAPE.fullmatch(shape)):
            raise ValueError(f"{shape!r} is not w<width>-d<depth>, e.g. w128-d4")
        if not all(map(int, m.groups())):
            raise ValueError(f"{shape!r}: width and depth must be positive")
    return v


class Sweep(Strict):
    """The learning-rate transfer sweep: one training run per shape x parametrization x lr x seed."""

    shapes: list[str]  # "w<n_embd>-d<n_layer>"
    head_dim: HeadDim  # n_head = width / head_dim: widening adds heads
    parametrizations: list[Literal["sp", "mup"]]  # mup: μP in width and CompleteP in depth
    lrs: list[Annotated[float, Field(gt=0, le=1)]]
    seeds: list[Seed]
    train: dict[str, Any]  # overrides of the shared train: block for every cell (its budget, say)

    _shapes = field_validator("shapes")(shapes)

    @model_validator(mode="after")
    def _grid(self):
        for name in ("shapes", "parametrizations", "lrs", "seeds"):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values):
                raise ValueError(f"{name}: must list at least one value, each once")
        for shape in self.shapes:
            if int(SHAPE.fullmatch(shape)[1]) % self.head_dim:
                raise ValueError(f"shapes: width of {shape} must be a multiple of head_dim ({self.head_dim})")
        lrs = sorted(self.lrs)
        if any(abs(b / a - 2) > 1e-6 for a, b in zip(lrs, lrs[1:])):
            raise ValueError(f"lrs: must step by 2x (sorted: {', '.join(map(str, lrs))})")
        return self

    def cells(self) -> list[str]:
        return [
            f"{shape}-{p}-{lr}-{seed}"
            for shape in self.shapes
            for p in self.parametrizations
            for lr in self.lrs
            for seed in self.seeds
        ]


RUNG = re.compile(r"(w\d+-d\d+)-(\d+)")  # shape-budget, as DVC's matrix names it


class Scaling(Strict):
    """Scaling-law rungs (one training run per shape x budget, on the shipped recipe, at the batch and
    schedule the sizes train with) and the law fitted to their final val losses at each budget, from
    which every named size's loss is predicted (analysis/scaling.py)."""

    shapes: list[str]  # "w<n_embd>-d<n_layer>"
    head_dim: HeadDim
    budgets: list[PosInt]  # tokens each rung sees: the sizes' own budgets, so that the fit measures their regime
    holdout: list[str]  # rungs trained but kept out of the fit: what it predicts for them scores it
    n: Literal["non_embedding", "total"]  # which parameter count the law takes as N
    huber_delta: Annotated[float, Field(gt=0)]
    bootstrap: Annotated[int, Field(ge=10)]
    interval: Annotated[float, Field(gt=0, lt=1)]
    train: dict[str, Any]  # overrides of the shared train: block for every rung

    _shapes = field_validator("shapes")(shapes)

    @model_validator(mode="after")
    def _grid(self):
        for name, least in (("shapes", 4), ("budgets", 1)):
            values = getattr(self, name)
            if len(values) < least or len(set(values)) != len(values):
                raise ValueError(f"{name}: must list at least {least} value{'s' * (least > 1)}, each once")
        for shape in self.shapes:
            if int(SHAPE.fullmatch(shape)[1]) % self.head_dim:
                raise ValueError(f"shapes: width of {shape} must be a multiple of head_dim ({self.head_dim})")
        for rung in self.holdout:
            if rung not in self.rungs():
                raise ValueError(f"holdout: {rung!r} is not a rung (shape-budget, e.g. {self.rungs()[-1]})")
        for budget in self.budgets:
            left = [r for r in self.fitted() if r.endswith(f"-{budget}")]
            if len(left) < 4:
                raise ValueError(
                    f"holdout: leaves {len(left)} rungs to fit at budget {budget}; the law at each "
                    "budget has 3 parameters, so at least 4 are needed"
                )
        return self

    def rungs(self) -> list[str]:
        return [f"{shape}-{budget}" for shape in self.shapes for budget in self.budgets]

    def fitted(self) -> list[str]:
        return [r for r in self.rungs() if r not in self.holdout]


REPLICA = re.compile(r"(.+)-(baseline|variant)-(w\d+-d\d+)-(\d+)-(\d+)")  # variant-side-shape-budget-seed
ARM = re.compile(r"(.+)-(w\d+-d\d+)-(\d+)")  # variant-shape-budget: a variant's rung
VARIANT_KEYS = ("lr", "train")  # what a variant may change: what the rungs read beyond their shape and seed


class Compare(Strict):
    """Scale-aware A/B tests (`ladder compare`, stages/ab.py): each variant trains the scaling rungs with
    its changes, beside the baseline's, and the two laws' predictions are compared size by size. The noise
    floor comes from both sides' smallest rungs trained again at more seeds (the replicas)."""

    variants: dict[str, dict[str, Any]]  # name -> the params it changes, as a tree: {train: {tie_weights: false}}
    noise_shapes: list[str]  # scaling shapes both sides train again at each of `seeds`
    seeds: list[Seed]  # the replicas' seeds, besides the rungs' own `seed`

    _shapes = field_validator("noise_shapes")(shapes)

    @field_validator("variants", mode="before")
    @classmethod
    def _empty(cls, v):
        return {} if v is None else {k: ({} if x is None else x) for k, x in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _grid(self):
        if not self.noise_shapes or len(set(self.noise_shapes)) != len(self.noise_shapes):
            raise ValueError("noise_shapes: must list at least one shape, each once")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds: must list at least one seed, each once (the rungs' own seed is the other)")
        for name in self.variants:
            if not re.fullmatch(r"[A-Za-z0-9_]+(-[A-Za-z0-9_]+)*", name) or SHAPE.search(name):
                raise ValueError(
                    f"variants: name {name!r} must be letters, digits, '_' or inner '-', with no shape in it"
                )
        return self

    def replicas(self, budgets: list[int]) -> list[str]:
        """Every variant's replicas: variant-side-shape-budget-seed, side baseline or variant."""
        return [
            f"{variant}-{side}-{shape}-{budget}-{seed}"
            for variant in self.variants
            for side in SIDES
            for shape in self.noise_shapes
            for budget in budgets
            for seed in self.seeds
        ]


Plan = Literal["base", "scored"]


class Pipeline(Strict):
    # What a plain run builds: each size and the curriculum plan it trains on (data/curriculum/<plan>/).
    sizes: dict[str, Plan]

    @field_validator("sizes", mode="before")
    @classmethod
    def _mapping(cls, v):
        if isinstance(v, list):
            raise ValueError("must map each size to its plan, e.g. {tiny: base, mini: base}")
        return v


class Params(Strict):
    seed: Seed
    lr: Annotated[float, Field(gt=0, le=1)]
    data: Data
    subset: Subset
    tokenizer: Tokenizer
    shard: Shard
    curriculum: Curriculum
    train: Train
    sizes: dict[str, Size]
    eval: Eval
    pipeline: Pipeline
    sweep: Sweep
    scaling: Scaling
    compare: Compare

    @model_validator(mode="after")
    def _sizes(self):
        for name in self.sizes:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"size name {name!r} must be letters, digits, '-' or '_'")
            t = self.train_for(name)  # validates the size's overrides
            for p in self.curriculum.warmup:
                if t.seq_len % p.seq_len:
                    raise ValueError(
                        f"curriculum.warmup: seq_len {p.seq_len} must divide the train.seq_len "
                        f"of size {name} ({t.seq_len})"
                    )
        for name in self.pipeline.sizes:
            if name not in self.sizes:
                raise ValueError(f"pipeline.sizes names {name!r}, which is not under sizes:")
        scorer = self.curriculum.scorer
        if scorer not in self.pipeline.sizes:
            # the score stage (always in the DAG) needs the scorer's trained model
            raise ValueError(
                f"curriculum.scorer: {scorer!r} must be one of pipeline.sizes ({', '.join(self.pipeline.sizes)})"
            )
        for shape in self.sweep.shapes:  # each cell's and rung's train block, checked now rather than when it runs
            for parametrization in self.sweep.parametrizations:
                self._cell_size(shape, parametrization)
        for rung in self.scaling.rungs():
            self._rung_size(*RUNG.fullmatch(rung).groups())
        for shape in self.compare.noise_shapes:
            if shape not in self.scaling.shapes:
                raise ValueError(f"compare.noise_shapes: {shape!r} is not one of scaling.shapes")
        if self.compare.variants and self.seed in self.compare.seeds:  # (no variant: no replica to train)
            raise ValueError(f"compare.seeds: {self.seed} is the rungs' own seed (`seed`); list other seeds")
        for variant in self.compare.variants:  # each of its runs' train block, checked now
            for rung in self.scaling.rungs():
                self.arm(f"{variant}-{rung}")
        if self.pipeline.sizes[scorer] == "scored":
            raise ValueError(
                f"pipeline.sizes.{scorer}: the scorer (curriculum.scorer) cannot train on "
                "the plan its own model orders; use base"
            )
        return self

    def plan_for(self, size: str) -> str:
        """The curriculum plan a size trains on: its entry in pipeline.sizes, else base."""
        return self.pipeline.sizes.get(size, "base")

    def size(self, name: str) -> Size:
        if name not in self.sizes:
            raise ConfigError(f"params.yaml: sizes.{name}: no such size (have: {', '.join(self.sizes)})")
        return self.sizes[name]

    def train_for(self, name: str) -> Train:
        """The shared train: block with this size's overrides applied (validated)."""
        own = dict(self.size(name).train)
        lr = own.pop("lr", None)  # the size's own lr: derived("train", name)
        try:
            if lr is not None:
                OwnLr(lr=lr)
            return Train.model_validate({**self.train.model_dump(), **own})
        except ValidationError as e:
            raise ValueError(f"sizes.{name}.train.{_describe(e.errors()[0])}") from None

    def cell(self, name: str) -> Params:
        """The params one sweep cell trains with: a size of that name (the cell's width and depth,
        train: overridden by sweep.train and the parametrization), the cell's lr and seed."""
        if name not in self.sweep.cells():
            raise ConfigError(
                f"params.yaml: sweep: no cell {name!r} (cells are shape-parametrization-lr-seed, "
                f"e.g. {self.sweep.cells()[0]})"
            )
        shape, parametrization, lr, seed = CELL.fullmatch(name).groups()
        return self._run(name, self._cell_size(shape, parametrization), lr=float(lr), seed=int(seed))

    def rung(self, name: str) -> Params:
        """The params one scaling rung trains with: a size of that name (the rung's width and depth and
        budget, train: overridden by scaling.train), the shipped lr, seed and parametrization."""
        if name not in self.scaling.rungs():
            raise ConfigError(
                f"params.yaml: scaling: no rung {name!r} (rungs are shape-budget, e.g. {self.scaling.rungs()[0]})"
            )
        return self._run(name, self._rung_size(*RUNG.fullmatch(name).groups()))

    def replica(self, name: str) -> Params:
        """A rung of one side of a comparison trained again at another seed (compare.seeds): the noise floor's
        runs, variant-side-shape-budget-seed."""
        if name not in self.compare.replicas(self.scaling.budgets):
            raise ConfigError(
                f"params.yaml: compare: no replica {name!r} (replicas are variant-side-shape-budget-seed: a variant "
                "of compare.variants, baseline or variant, compare.noise_shapes, scaling.budgets, compare.seeds)"
            )
        variant, side, shape, budget, seed = REPLICA.fullmatch(name).groups()
        base = self.variant(variant) if side == "variant" else self
        changes = self.compare.variants[variant].get("train") or {} if side == "variant" else {}
        return base._run(name, base._rung_size(shape, budget, changes), seed=int(seed))

    def arm(self, name: str) -> Params:
        """A variant's rung (variant-shape-budget): the rung with the variant's changes applied."""
        m = ARM.fullmatch(name)
        if not m or m[1] not in self.compare.variants or f"{m[2]}-{m[3]}" not in self.scaling.rungs():
            raise ConfigError(
                f"params.yaml: compare: no run {name!r} (a variant's runs are variant-shape-budget, variants from "
                "compare.variants, shapes and budgets from scaling:)"
            )
        variant = self.variant(m[1])
        return variant._run(name, variant._rung_size(m[2], m[3], self.compare.variants[m[1]].get("train") or {}))

    def variant(self, name: str) -> Params:
        """These params with variant `name`'s changes (compare.variants.<name>) applied, checked."""
        if name not in self.compare.variants:
            raise ConfigError(
                f"params.yaml: compare.variants: no variant {name!r} "
                f"(have: {', '.join(self.compare.variants) or 'none'})"
            )
        changes = self.compare.variants[name]
        where = f"compare.variants.{name}"
        if not isinstance(changes, dict):
            raise ValueError(f"{where}: must map keys to values, e.g. {{train: {{tie_weights: false}}}}")
        for key in changes:
            if key not in VARIANT_KEYS:
                raise ValueError(
                    f"{where}.{key}: a variant may change {' and '.join(VARIANT_KEYS)}.* only (what the rungs read; "
                    "data, tokenizer and curriculum are shared by both arms)"
                )
        try:
            lr = OwnLr(lr=changes.get("lr", self.lr)).lr
        except ValidationError as e:
            raise ValueError(f"{where}.{_describe(e.errors()[0])}") from None
        train = changes.get("train") or {}
        if not isinstance(train, dict):
            raise ValueError(f"{where}.train: must map train keys to values")
        if keys := sorted(set(train) & {"tokens", "flops", "tokens_per_param"}):
            raise ValueError(f"{where}.train: sets a budget ({', '.join(keys)}); both arms train at scaling.budgets")
        try:
            merged = Train.model_validate({**self.train.model_dump(), **train})
        except ValidationError as e:
            raise ValueError(f"{where}.train.{_describe(e.errors()[0])}") from None
        return self.model_copy(update={"lr": lr, "train": merged})

    def derived(self, stage: str, name: str) -> Params:
        """The params a run of `stage` named `name` trains with: a size's are these params (at its own lr
        if it has one), a cell's, a rung's, a replica's and an arm's are built from their names."""
        return {"train": self._sized, "cell": self.cell, "rung": self.rung, "replica": self.replica, "arm": self.arm}[
            stage
        ](name)

    def _sized(self, name: str) -> Params:
        """A size's: these params, at the size's own lr where sizes.<name>.train.lr sets one."""
        own = self.size(name).train.get("lr")
        return self if own is None else self.model_copy(update={"lr": float(own)})

    def _run(self, name: str, size: Size, **update) -> Params:
        return self.model_copy(update={**update, "sizes": {name: size}, "pipeline": Pipeline(sizes={name: "base"})})

    def _cell_size(self, shape: str, parametrization: str) -> Size:
        rule = parametrization == "mup"
        return self._shape_size(
            "sweep", shape, self.sweep.head_dim, {**self.sweep.train, "mup": rule, "completep": rule}
        )

    def _rung_size(self, shape: str, budget: str, changes: dict | None = None) -> Size:
        """A rung's size; `changes`: a variant's train changes, which outrank scaling.train (an arm's)."""
        s = self.scaling
        if keys := sorted(set(s.train) & {"tokens", "flops", "tokens_per_param"}):
            raise ValueError(
                f"scaling.train: sets a budget ({', '.join(keys)}); each rung's comes from scaling.budgets"
            )
        train = {**s.train, **(changes or {}), "tokens": int(budget), "flops": None}
        return self._shape_size("scaling", shape, s.head_dim, train)

    def _shape_size(self, block: str, shape: str, head_dim: int, train: dict) -> Size:
        """A size of shape w<width>-d<depth> with head_dim-wide heads; `train` overrides the train: block,
        checked now, so an error names the params block it came from."""
        width, depth = map(int, SHAPE.fullmatch(shape).groups())
        try:
            size = Size(
                n_layer=depth, n_head=width // head_dim, n_embd=width, train={**train, "mup_base_head_dim": head_dim}
            )
        except ValidationError as e:  # raised here it would name the Size's field as if at the top level
            raise ValueError(f"{block}.shapes: {shape}: {_describe(e.errors()[0])}") from None
        try:
            Train.model_validate({**self.train.model_dump(), **size.train})
        except ValidationError as e:
            raise ValueError(f"{block}.train.{_describe(e.errors()[0])}") from None
        return size


def _describe(err: dict) -> str:
    key = ".".join(str(p) for p in err["loc"])
    msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden" and err["loc"][-1:] == ("lr",):
        msg += " (the shared lr is the top-level `lr`, which the rungs train at; a size's own: sizes.<name>.train.lr)"
    return f"{key}: {msg}" if key else msg


class _UniqueKeys(yaml.SafeLoader):
    """YAML as DVC reads it: duplicate keys refused (plain YAML keeps the last one silently), and only
    true and false are booleans, as in YAML 1.2. PyYAML's YAML 1.1 reads `off`, `on`, `yes` and `no` as
    booleans too, so `dvc exp run -S train.compile=off`, which DVC writes unquoted, was refused."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in rules if tag != "tag:yaml.org,2002:bool"]
        for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_UniqueKeys.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def read_yaml(text: str):
    """YAML text as params.yaml is read: duplicate keys refused, YAML 1.2 booleans."""
    return yaml.load(text, Loader=_UniqueKeys)


def load(path: str | os.PathLike = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = read_yaml(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run from the project root)") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8") from None
    except OSError as e:  # a folder, unreadable
        raise ConfigError(f"{path}: cannot be read ({e.strerror or e})") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{path}: not valid YAML: {where}{e.problem or e.context}") from None
    except yaml.YAMLError as e:  # e.g. a control character the reader refuses
        raise ConfigError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping of keys to values")
    return validate(raw, path)


def read_raw(path: str | os.PathLike = "params.yaml") -> dict:
    """params.yaml as plain data, checked (for a command that edits it: `ladder compare`)."""
    load(path)
    return read_yaml(Path(path).read_text())


def validate(raw: dict, where: str | os.PathLike = "params.yaml") -> Params:
    """Params from plain data; a bad value fails with one line naming `where` and the key."""
    try:
        return Params.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{where}: {_describe(e.errors()[0])}") from None
