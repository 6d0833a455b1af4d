"""Where the math runs: device, precision and CPU threads, chosen once for every stage."""

from __future__ import annotations

import contextlib
import os

import torch


def pick() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def setup(device: torch.device) -> None:
    """TF32 matmuls on CUDA; on CPU every core this process may use.

    Snakemake sets OMP_NUM_THREADS to the rule's `threads` while DVC sets nothing, so the thread
    count is decided here to make both tools run a stage the same way (LADDER_THREADS overrides);
    torchrun's processes share the cores.
    """
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        share = len(os.sched_getaffinity(0)) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # torchrun's processes
        torch.set_num_threads(int(os.environ.get("LADDER_THREADS", max(1, share))))


def precision(device: torch.device, requested: str = "auto") -> str:
    """bf16 where the GPU supports it, fp16 (with loss scaling) on older GPUs, fp32 on CPU."""
    if requested != "auto":
        return requested
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def autocast(device: torch.device, dtype: str):
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# Dense bf16 tensor-core peak (FLOP/s, fp32 accumulate) and memory (GiB) of GPUs people train on,
# keyed by what torch.cuda.get_device_name() contains. MFU is reported against these, and
# `ladder plan` estimates wall time and fit for each of them.
GPUS = {
    "RTX 4070": (29.1e12, 12),
    "RTX 3090": (71e12, 24),
    "A100": (312e12, 80),
    "H100": (989e12, 80),
    "H200": (989e12, 141),
}


def peak_flops(device: torch.device, dtype: str) -> float | None:
    """This GPU's peak from GPUS when it is one of them and runs in bf16/fp16, else None."""
    if device.type != "cuda" or dtype == "fp32":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, (flops, _) in GPUS.items() if key in name), None)
