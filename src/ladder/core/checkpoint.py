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

from ladder.core import paths
from ladder.core.files import LadderError, atomic, need, read_json, sha256_file, write_json
from ladder.core.model import GPT, GPTConfig
from ladder.core.progress import log


def save(folder, model: GPT, opt, scaler, state: dict) -> None:
    with atomic(folder) as (tmp,):
        tmp.mkdir()
        save_model(model, str(tmp / "model.safetensors"))
        rng = {"cpu": torch.get_rng_state()} | ({"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {})
        torch.save({"optimizer": opt.state_dict(), "scaler": scaler.state_dict(), "rng": rng}, tmp / "optim.pt")
        write_json(tmp / "state.json", state)


def load(folder, model: GPT, opt, scaler, fingerprint: str) -> dict | None:
    """Restore a checkpoint made with this fingerprint into model, opt and scaler; its state, or
    None (no checkpoint, another fingerprint, or one that cannot be read: said in one line)."""
    if not (folder / "state.json").exists():
        return None
    try:
        state = read_json(folder / "state.json")
        if state.get("fingerprint") != fingerprint:
            log.info("train: ignoring checkpoint in %s (made with other params or data)", folder)
            return None
        load_model(model, str(folder / "model.safetensors"))
        extra = torch.load(folder / "optim.pt", weights_only=True)
        opt.load_state_dict(extra["optimizer"])
        scaler.load_state_dict(extra["scaler"])
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as e:
        log.info("train: ignoring unreadable checkpoint in %s (%s); starting over", folder,
                 str(e).splitlines()[0] if str(e) else type(e).__name__)
        return None
    torch.set_rng_state(extra["rng"]["cpu"])
    if "cuda" in extra["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(extra["rng"]["cuda"])
    return state


def load_trained(size: str, device: torch.device) -> GPT:
    """A trained size's model, in eval mode; refused in one line if its weights are not the ones
    train.json recorded."""
    out = paths.Size(size)
    cfg = GPTConfig(**read_json(need(out.config, f"config of size {size}")))
    need(out.model, f"weights of size {size}")
    if out.summary.exists():
        recorded = read_json(out.summary).get("model_sha256")
        if recorded and sha256_file(out.model) != recorded:
            raise LadderError(f"{out.model}: sha256 differs from {out.summary} (truncated or replaced; "
                              f"retrain with `ladder train --size {size}` or restore it with `dvc checkout`)")
    model = GPT(cfg)
    try:
        load_model(model, str(out.model))
    except (SafetensorError, RuntimeError, OSError) as e:
        raise LadderError(f"{out.model}: cannot be read as size {size}'s weights ({str(e).splitlines()[0]})") from None
    return model.to(device).eval()
