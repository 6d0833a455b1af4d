"""Model and optimizer state on disk: the resumable training checkpoint, and a trained size's model.

A checkpoint (results/<size>/ckpt/) holds the weights, the optimizer, scaler and RNG states, and
state.json (step, data cursor, history, the fingerprint of what shaped the run, and the sha256 of
the two other files and of its own content). A checkpoint that does not match what it recorded, or
cannot be read, is set aside in one line naming the file and the run starts over.

A trained model is results/<size>/model.safetensors with its config.json; train.json records the
sha256 of both, and every reader checks them, so a truncated, edited or swapped file is refused
rather than evaluated. The config is also checked against the shapes in the weights' header before
any model is allocated: a config nothing recorded (a model made by hand) cannot ask for gigabytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model

from ladder.nn import distributed
from ladder.nn.distributed import World
from ladder.nn.model import GPT, GPTConfig
from ladder.pipeline import paths
from ladder.pipeline.files import LadderError, atomic, need, read_json, sha256_file, write_json, written
from ladder.pipeline.progress import log

FILES = ("model.safetensors", "optim.pt")  # a checkpoint's files besides state.json, whose sha256 it records
STATE = "state.json"


def _rng() -> dict:
    return {"cpu": torch.get_rng_state()} | ({"cuda": torch.cuda.get_rng_state()} if torch.cuda.is_available() else {})


def _digest(state: dict) -> str:
    """sha256 of state.json's content (its own record left out), so an edited step or cursor shows."""
    return hashlib.sha256(json.dumps(state, sort_keys=True, allow_nan=False).encode()).hexdigest()


def save(folder, model: GPT, opts: list, scaler, state: dict, world: World | None = None) -> None:
    """Every rank calls this (FSDP gathers the shards, and each rank's RNG state is kept); rank 0 writes."""
    world = world or World()
    model_sd, opt_sds = distributed.full_state(model, opts, world)
    rngs = distributed.gather(_rng(), world)
    if not world.main:
        return
    with written(folder, SafetensorError), atomic(folder) as (tmp,):
        tmp.mkdir()
        if distributed.sharded(model):  # a plain copy, so the file reads like any other
            plain = GPT(model.config)
            plain.load_state_dict(model_sd)
            save_model(plain, str(tmp / "model.safetensors"))
        else:
            save_model(model, str(tmp / "model.safetensors"))
        torch.save({"optimizers": opt_sds, "scaler": scaler.state_dict(), "rng": rngs}, tmp / "optim.pt")
        sha256 = {name: sha256_file(tmp / name) for name in FILES} | {STATE: _digest(state)}
        write_json(tmp / STATE, {**state, "sha256": sha256})


class Unusable(Exception):
    """A checkpoint that cannot be resumed from; its message names the file."""


def _reason(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e).strip() else type(e).__name__


def _read(folder: Path, model: GPT, opts: list, fingerprint: str, world: World) -> tuple[dict, dict, dict] | None:
    """(state, model state dict, optimizer/scaler/RNG states) of a checkpoint made with this fingerprint,
    each file checked against the sha256 that state.json recorded; None for another fingerprint.
    Nothing is applied here: a checkpoint refused at any point leaves the fresh run untouched."""
    path = folder / STATE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise Unusable(f"{path}: {_reason(e)}") from None
    if not isinstance(state, dict):
        raise Unusable(f"{path}: not a checkpoint's state")
    if state.get("fingerprint") != fingerprint:
        return None
    recorded = state.pop("sha256", None)
    if not isinstance(recorded, dict) or set(recorded) != {*FILES, STATE}:
        raise Unusable(f"{path}: records no sha256 of the checkpoint's files (made by an older version)")
    if recorded[STATE] != _digest(state):
        raise Unusable(f"{path}: edited since it was written (its sha256 differs from the one it recorded)")
    for name in FILES:
        try:
            same = sha256_file(folder / name) == recorded[name]
        except OSError as e:
            raise Unusable(f"{folder / name}: {_reason(e)}") from None
        if not same:
            raise Unusable(f"{folder / name}: sha256 differs from the one {path} recorded")
    # the files are what save() wrote; what follows catches a checkpoint of a model or optimizer changed since
    plain = GPT(model.config)
    try:
        load_model(plain, str(folder / "model.safetensors"))
    except Exception as e:  # any failure to read it: start over, said in one line
        raise Unusable(f"{folder / 'model.safetensors'}: {_reason(e)}") from None
    optim = folder / "optim.pt"
    try:
        extra = torch.load(optim, weights_only=True)
    except Exception as e:  # as above: pickle and zip errors alike (torch's own text advises an unsafe load)
        raise Unusable(f"{optim}: cannot be read as a checkpoint's optimizer state ({type(e).__name__})") from None
    try:
        _fits(extra, opts, world)
    except Exception as e:  # what the file holds does not fit this run's optimizers
        raise Unusable(f"{optim}: {_reason(e)}") from None
    return state, plain.state_dict(), extra


def _fits(extra, opts: list, world: World) -> None:
    """optim.pt's states fit this run's optimizers (what load_state_dict would refuse only half-way)."""
    if not isinstance(extra, dict) or not {"optimizers", "scaler", "rng"} <= set(extra):
        raise ValueError("not a checkpoint's optimizer state")
    sds = extra["optimizers"]
    if not isinstance(sds, list) or len(sds) != len(opts):
        raise ValueError(f"{len(sds) if isinstance(sds, list) else 'no'} optimizer states for {len(opts)} optimizers")
    for opt, sd in zip(opts, sds):
        groups, state = sd.get("param_groups"), sd.get("state")
        if not isinstance(groups, list) or not isinstance(state, dict):
            raise ValueError("an optimizer state without param_groups or state")
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in opt.param_groups]:
            raise ValueError("optimizer parameter groups differ from this run's")
        params = {i: p for g, mine in zip(groups, opt.param_groups) for i, p in zip(g["params"], mine["params"])}
        for i, values in state.items():
            for v in values.values() if isinstance(values, dict) else [None]:
                p = params.get(i)  # a moment has its parameter's shape (a factored one fewer dimensions)
                if p is None or (isinstance(v, torch.Tensor) and v.dim() == p.dim() and v.shape != p.shape):
                    raise ValueError(f"optimizer state of parameter {i} does not fit this model")
    if not isinstance(extra["scaler"], dict):
        raise ValueError("no scaler state")
    rng = extra["rng"][world.rank]
    if not isinstance(rng.get("cpu"), torch.Tensor) or rng["cpu"].dtype != torch.uint8:
        raise ValueError("no RNG state")


def load(folder, model: GPT, opts: list, scaler, fingerprint: str, world: World | None = None) -> dict | None:
    """Restore a checkpoint made with this fingerprint into model, opts and scaler; its state, or
    None (no checkpoint, another fingerprint, or one that cannot be read or does not match the sha256s
    it recorded: said in one line naming the file, and the run starts over)."""
    world = world or World()
    folder = Path(folder)
    if not (folder / STATE).exists():
        return None
    fresh = torch.get_rng_state()  # building the copy below draws from it: a fresh run must not see that
    try:
        found = _read(folder, model, opts, fingerprint, world)
    except Unusable as e:
        log.info("train: ignoring unreadable checkpoint in %s (%s); starting over", folder, e)
        found = None
    else:
        if found is None:
            log.info("train: ignoring checkpoint in %s (made with other params or data)", folder)
    if found is None:
        torch.set_rng_state(fresh)
        return None
    state, model_sd, extra = found
    distributed.load_full_state(model, opts, model_sd, extra["optimizers"], world)
    scaler.load_state_dict(extra["scaler"])
    rng = extra["rng"][world.rank]
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    return state


# ----------------------------------------------------------------------------- a trained size's model


def _fail(config: Path, why: str) -> LadderError:
    return LadderError(f"{config}: {why}; restore it with `dvc checkout` or retrain the size")


def checked_config(config: Path, weights: Path) -> GPTConfig:
    """The GPTConfig in `config`, refused in one line naming the file unless it is one (every key
    known, of its type, none missing) and describes exactly the tensors in `weights` (their names and
    shapes, read from the safetensors header). Nothing the size of the model is allocated."""
    raw = read_json(config)
    if not isinstance(raw, dict):
        raise _fail(config, "not a model config (a JSON object of GPTConfig's fields)")
    fields = {f.name: f for f in dataclasses.fields(GPTConfig)}
    types = typing.get_type_hints(GPTConfig)
    if unknown := sorted(set(raw) - set(fields)):
        raise _fail(config, f"unknown key {unknown[0]!r}")
    if missing := [n for n, f in fields.items() if n not in raw and f.default is dataclasses.MISSING]:
        raise _fail(config, f"missing key {missing[0]!r}")
    for key, value in raw.items():
        kind = types[key]
        fine = (
            isinstance(value, bool)
            if kind is bool
            else isinstance(value, int) and not isinstance(value, bool) and value >= 0
            if kind is int
            else isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
        if not fine:
            raise _fail(config, f"{key}: {value!r} is not a{'n' if kind is int else ''} {kind.__name__}")
    try:
        cfg = GPTConfig(**raw)
    except (ValueError, ZeroDivisionError) as e:
        raise _fail(config, _reason(e)) from None
    try:
        with safe_open(str(weights), framework="pt") as f:
            stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise LadderError(f"{weights}: cannot be read as a model's weights ({_reason(e)})") from None
    if cfg.n_layer > len(stored):  # each layer has tensors of its own: cheap to refuse before building
        raise _fail(config, f"n_layer {cfg.n_layer} is more than the {len(stored)} tensors in {weights}")
    try:
        with torch.device("meta"):  # shapes only: no memory, no draw
            wanted = GPT(cfg).state_dict(keep_vars=True)
    except (RuntimeError, ValueError, ZeroDivisionError) as e:
        raise _fail(config, _reason(e)) from None
    tied: dict[int, list[str]] = {}  # a tied weight is one tensor under two names; the file keeps one
    for name, t in wanted.items():
        tied.setdefault(id(t), []).append(name)
    for names in tied.values():
        present = [n for n in names if n in stored]
        shape = tuple(wanted[names[0]].shape)
        if not present:
            raise _fail(config, f"describes {names[0]} {list(shape)}, which {weights} does not hold")
        if stored[present[0]] != shape:
            raise _fail(config, f"describes {present[0]} as {list(shape)}; {weights} holds {list(stored[present[0]])}")
    if extra := sorted(set(stored) - set(wanted)):
        raise _fail(config, f"describes no {extra[0]}, which {weights} holds")
    return cfg


def load_trained(size: str, device: torch.device) -> GPT:
    """A trained size's model, in eval mode; refused in one line if its weights or config are not the
    ones train.json recorded, or the config does not describe the weights (checked before allocating)."""
    out = paths.RunFiles(size)
    need(out.config, f"config of size {size}")
    need(out.model, f"weights of size {size}")
    if out.summary.exists():
        summary = read_json(out.summary)
        if not isinstance(summary, dict):
            raise LadderError(f"{out.summary}: not a train.json; retrain with `ladder train --size {size}`")
        for path, key in ((out.model, "model_sha256"), (out.config, "config_sha256")):
            recorded = summary.get(key)
            if recorded and sha256_file(path) != recorded:
                raise LadderError(
                    f"{path}: sha256 differs from {out.summary} (truncated, edited or replaced; "
                    f"retrain with `ladder train --size {size}` or restore it with `dvc checkout`)"
                )
    model = GPT(checked_config(out.config, out.model))
    try:
        load_model(model, str(out.model))
    except (SafetensorError, RuntimeError, OSError) as e:
        raise LadderError(f"{out.model}: cannot be read as size {size}'s weights ({_reason(e)})") from None
    return model.to(device).eval()
