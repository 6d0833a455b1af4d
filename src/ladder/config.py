"""Typed, validated view of params.yaml.

Every stage declares the params keys it reads (`STAGE_PARAMS`). DVC lists the same keys under
`params:` in dvc.yaml; Snakemake sees them through small per-stage snapshot files
(`.ladder/params/<stage>.json`) that are rewritten only when their content changes. A test keeps
the three in agreement. A bad value fails with one line naming the key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ladder.files import LadderError, atomic_write_text

PosInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class ConfigError(LadderError):
    """A problem with params.yaml; the message names the key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HFSource(Strict):
    name: str | None = None
    config: str | None = None
    split: str = "train"
    text_field: str = "text"
    revision: str | None = None
    timeout_s: Annotated[float, Field(gt=0)] = 20.0


class Data(Strict):
    source: str = "embedded"  # "embedded", "hf" (see data.hf) or a local file, folder or glob
    format: Literal["auto", "txt", "jsonl", "parquet"] = "auto"
    text_field: str = "text"
    txt_split: Literal["line", "blank_line", "titled"] = "titled"
    hf: HFSource = HFSource()
    max_docs: PosInt | None = None
    max_bytes: PosInt | None = None


class Subset(Strict):
    fraction: Fraction = 1.0
    max_bytes: PosInt | None = None
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.05
    min_chars: Annotated[int, Field(ge=0)] = 1
    max_chars: PosInt | None = None
    dedup: Literal["exact", "near"] = "exact"
    near_threshold: Fraction = 0.85


class Tokenizer(Strict):
    vocab_size: Annotated[int, Field(ge=260, le=1 << 20)] = 8192
    min_frequency: PosInt = 2
    sample_bytes: PosInt = 500_000_000


class Shard(Strict):
    shard_tokens: PosInt = 100_000_000
    max_tokens: PosInt | None = None


class Phase(Strict):
    seq_len: PosInt
    share: Fraction


class Curriculum(Strict):
    warmup: list[Phase] = []
    order: Literal["none", "random", "length", "compressibility"] = "random"  # the base plan's order
    direction: Literal["easy_first", "hard_first"] = "easy_first"
    scorer: str = "tiny"  # the size whose trained model scores documents for the `scored` plan

    @model_validator(mode="after")
    def _shares(self):
        if sum(p.share for p in self.warmup) >= 1:
            raise ValueError("warmup shares must sum to less than 1 (the rest runs at train.seq_len)")
        return self


class Train(Strict):
    seq_len: PosInt = 256
    batch_tokens: PosInt = 16384
    micro_batch: PosInt = 16
    tokens: PosInt | None = None  # explicit budget; when unset, tokens_per_param x parameters
    tokens_per_param: Annotated[float, Field(gt=0)] = 20.0
    schedule: Literal["cosine", "wsd"] = "cosine"
    warmup_frac: Annotated[float, Field(ge=0, lt=1)] = 0.05
    decay_frac: Fraction = 0.2
    min_lr_frac: Annotated[float, Field(ge=0, le=1)] = 0.1
    weight_decay: Annotated[float, Field(ge=0)] = 0.1
    beta1: Annotated[float, Field(ge=0, lt=1)] = 0.9
    beta2: Annotated[float, Field(ge=0, lt=1)] = 0.95
    grad_clip: Annotated[float, Field(ge=0)] = 1.0
    mup: bool = False
    mup_base_width: PosInt = 128
    mup_base_head_dim: PosInt = 32  # the base model's head_dim (tiny: 128 / 4 heads)
    tie_weights: bool = True
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    compile: Literal["auto", "on", "off"] = "auto"
    activation_checkpointing: bool = False
    fp32_residual: bool = False  # bf16 autocast: keep the residual stream in float32 (default bf16)
    log_every: PosInt = 10
    eval_every: PosInt = 100
    eval_tokens: PosInt = 65536
    checkpoint_every: PosInt = 200
    max_hours: Annotated[float, Field(gt=0)] = 24.0

    @model_validator(mode="after")
    def _budget(self):
        if self.batch_tokens % self.seq_len:
            raise ValueError(f"batch_tokens ({self.batch_tokens}) must be a multiple of seq_len ({self.seq_len})")
        return self


class Size(Strict):
    n_layer: PosInt
    n_head: PosInt
    n_embd: PosInt
    train: dict[str, Any] = {}  # overrides of the shared train: block for this size

    @model_validator(mode="after")
    def _heads(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        return self


class Eval(Strict):
    max_tokens: PosInt = 262_144
    extra: dict[str, str] = {}  # more held-out text sets: name -> file (txt, jsonl, parquet, compressed)
    cloze_items: Annotated[int, Field(ge=0)] = 200
    cloze_choices: Annotated[int, Field(ge=2)] = 4
    prompts: list[str] = ["The history of"]
    max_new_tokens: PosInt = 48
    temperature: Annotated[float, Field(ge=0)] = 0.8
    top_k: PosInt | None = 50
    top_p: Fraction | None = 0.95


Plan = Literal["base", "scored"]


class Pipeline(Strict):
    # What a plain run builds: each size and the curriculum plan it trains on (data/curriculum/<plan>/).
    sizes: dict[str, Plan] = {"tiny": "base"}

    @field_validator("sizes", mode="before")
    @classmethod
    def _mapping(cls, v):
        if isinstance(v, list):
            raise ValueError("must map each size to its plan, e.g. {tiny: base, mini: base}")
        return v


class Params(Strict):
    seed: int = 1337
    lr: Annotated[float, Field(gt=0, le=1)] = 3e-3
    data: Data = Data()
    subset: Subset = Subset()
    tokenizer: Tokenizer = Tokenizer()
    shard: Shard = Shard()
    curriculum: Curriculum = Curriculum()
    train: Train
    sizes: dict[str, Size]
    eval: Eval = Eval()
    pipeline: Pipeline = Pipeline()

    @model_validator(mode="after")
    def _sizes(self):
        for name in self.sizes:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"size name {name!r} must be letters, digits, '-' or '_'")
            self.train_for(name)  # validates the size's overrides
        for name in self.pipeline.sizes:
            if name not in self.sizes:
                raise ValueError(f"pipeline.sizes names {name!r}, which is not under sizes:")
        scorer = self.curriculum.scorer
        if scorer not in self.pipeline.sizes:
            # the score stage (always in the DAG) needs the scorer's trained model
            raise ValueError(f"curriculum.scorer: {scorer!r} must be one of pipeline.sizes "
                             f"({', '.join(self.pipeline.sizes)})")
        if self.pipeline.sizes[scorer] == "scored":
            raise ValueError(f"pipeline.sizes.{scorer}: the scorer (curriculum.scorer) cannot train on "
                             "the plan its own model orders; use base")
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
        merged = {**self.train.model_dump(), **self.size(name).train}
        try:
            return Train.model_validate(merged)
        except ValidationError as e:
            raise ValueError(f"sizes.{name}.train.{_describe(e.errors()[0])}") from None


# The keys each stage reads. dvc.yaml's params: lists must say the same (tests/test_graph.py).
STAGE_PARAMS: dict[str, list[str]] = {
    "download": ["data"],
    "subset": ["seed", "subset"],
    "tokenizer": ["tokenizer"],
    "shard": ["shard"],
    "curriculum": ["seed", "curriculum.warmup", "curriculum.order", "curriculum.direction"],
    "score": ["curriculum.warmup", "curriculum.scorer", "curriculum.direction"],
    "train": ["seed", "lr", "train", "sizes.{size}", "pipeline.sizes.{size}"],
    "eval": ["seed", "eval"],
}
PER_SIZE = ("train", "eval")


def _describe(err: dict) -> str:
    key = ".".join(str(p) for p in err["loc"])
    msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    return f"{key}: {msg}" if key else msg


def load(path: str | os.PathLike = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run from the project root)") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping of keys to values")
    try:
        return Params.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{path}: {_describe(e.errors()[0])}") from None


def lookup(raw: dict, dotted: str) -> Any:
    node: Any = raw
    for part in dotted.split("."):
        node = node[part]
    return node


def stage_keys(stage: str, size: str | None = None) -> list[str]:
    return [k.format(size=size) for k in STAGE_PARAMS[stage]]


def stage_params(params: Params, stage: str, size: str | None = None) -> dict[str, Any]:
    """The resolved values a stage depends on, keyed by their dotted names."""
    raw = params.model_dump(mode="json")
    raw["pipeline"]["sizes"] = {s: params.plan_for(s) for s in params.sizes}  # unlisted sizes: base
    return {k: lookup(raw, k) for k in stage_keys(stage, size)}


def stage_name(stage: str, size: str | None = None) -> str:
    return f"{stage}@{size}" if size else stage


SNAPSHOT_DIR = Path(".ladder/params")


def write_snapshots(params: Params, root: Path = Path(".")) -> None:
    """Write each stage's params slice to .ladder/params/<stage>.json, touching only changed files.

    Snakemake takes these files as inputs, so a params change reaches it as a content change of a
    small file, even for outputs that DVC produced (for which Snakemake keeps no metadata).
    """
    out = root / SNAPSHOT_DIR
    out.mkdir(parents=True, exist_ok=True)
    for stage in STAGE_PARAMS:
        for size in params.sizes if stage in PER_SIZE else [None]:
            text = json.dumps(stage_params(params, stage, size), indent=1, sort_keys=True) + "\n"
            f = out / f"{stage_name(stage, size)}.json"
            if not f.exists() or f.read_text() != text:
                atomic_write_text(f, text)
