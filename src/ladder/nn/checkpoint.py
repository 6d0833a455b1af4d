"""Model and optimizer state on disk: the resumable training checkpoint, and a trained size's model.

A checkpoint (results/<size>/ckpt/) holds the weights, the optimizer, scaler and RNG states, and
state.json (step, data cursor, history, and the fingerprint of what shaped the run). A trained
model is results/<size>/model.safetensors with its config.json; train.json records its sha256,
and every reader checks it, so a truncated or swapped file is refused rather than evaluated.
"""

from __future__ import annotations

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from ladder.nn import distributed
from ladder.nn.distributed import World
from ladder.nn.model import GPT, GPTConfig
from ladder.pipeline import paths
from ladder.pipeline.files import LadderError, atomic, need, read_json, sha256_file, write_json
from ladder.pipeline.progress import log


def _rng() -> dict:
    return {"cpu": torch.get_rng_state()} | ({"cuda": torch.cuda.get_rng_state()} if torch.cuda.is_available() else {})


def save(folder, model: GPT, opts: list, scaler, state: dict, world: World | None = None) -> None:
    """Every rank calls this (FSDP gathers the shards, and each rank's RNG state is kept); rank 0 writes."""
    world = world or World()
    model_sd, opt_sds = distributed.full_state(model, opts, world)
    rngs = distributed.gather(_rng(), world)
    if not world.main:
        return
    with atomic(folder) as (tmp,):
        tmp.mkdir()
        if distributed.sharded(model):  # a plain copy, so the file reads like any other
            plain = GPT(model.config)
            plain.load_state_dict(model_sd)
            save_model(plain, str(tmp / "model.safetensors"))
        else:
            save_model(model, str(tmp / "model.safetensors"))
        torch.save({"optimizers": opt_sds, "scaler": scaler.state_dict(), "rng": rngs}, tmp / "optim.pt")
        write_json(tmp / "state.json", state)


def load(folder, model: GPT, opts: list, scaler, fingerprint: str, world: World | None = None) -> dict | None:
    """Restore a checkpoint made with this fingerprint into model, opts and scaler; its state, or
    None (no checkpoint, another fingerprint, or one that cannot be read: said in one line)."""
    world = world or World()
    if not (folder / "state.json").exists():
        return None
    fresh = torch.get_rng_state()  # building the copy below draws from it: a fresh run must not see that
    try:
        state = read_json(folder / "state.json")
        if state.get("fingerprint") != fingerprint:
            log.info("train: ignoring checkpoint in %s (made with other params or data)", folder)
            return None
        plain = GPT(model.config)
        load_model(plain, str(folder / "model.safetensors"))
        extra = torch.load(folder / "optim.pt", weights_only=True)
        distributed.load_full_state(model, opts, plain.state_dict(), extra["optimizers"], world)
        scaler.load_state_dict(extra["scaler"])
        rng = extra["rng"][world.rank]
    except (OSError, ValueError, KeyError, IndexError, RuntimeError, SafetensorError) as e:
        log.info(
            "train: ignoring unreadable checkpoint in %s (%s); starting over",
            folder,
            str(e).splitlines()[0] if str(e) else type(e).__name__,
        )
        torch.set_rng_state(fresh)
        return None
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    return state


def load_trained(size: str, device: torch.device) -> GPT:
    """A trained size's model, in eval mode; refused in one line if its weights are not the ones
    train.json recorded."""
    out = paths.RunFiles(size)
    cfg = GPTConfig(**read_json(need(out.config, f"config of size {size}")))
    need(out.model, f"weights of size {size}")
    if out.summary.exists():
        recorded = read_json(out.summary).get("model_sha256")
        if recorded and sha256_file(out.model) != recorded:
            raise LadderError(
                f"{out.model}: sha256 differs from {out.summary} (truncated or replaced; "
                f"retrain with `ladder train --size {size}` or restore it with `dvc checkout`)"
            )
    model = GPT(cfg)
    try:
        load_model(model, str(out.model))
    except (SafetensorError, RuntimeError, OSError) as e:
        raise LadderError(f"{out.model}: cannot be read as size {size}'s weights ({str(e).splitlines()[0]})") from None
    return model.to(device).eval()
