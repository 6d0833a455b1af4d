"""Data-parallel training over torchrun's processes: DDP, or FSDP2 (`train.parallel: fsdp`) for sizes
whose weights, gradients and optimizer state do not fit one device.

One process per device. With `train.devices: N > 1`, `ladder train` re-executes itself under
`torchrun --standalone --nproc_per_node=N`, so Snakemake, DVC and a SLURM job all run the same
command. Micro-batch j of each global batch goes to rank j mod N and each rank accumulates its
share, so `batch_tokens`, the schedule and the order of the data mean what they mean on one
device. Every rank keeps the same state (step, data cursor, history); only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    group: bool = False  # launched by torchrun: a process group exists (even of one process)

    @property
    def main(self) -> bool:
        return self.rank == 0


def relaunch(devices: int, argv: list[str]) -> None:
    """Replace this process by torchrun running the same command on `devices` processes (once)."""
    if devices > 1 and "LOCAL_RANK" not in os.environ:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={devices}",
            "-m",
            "ladder.cli",
            *argv,
        ]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, cmd)


def start(device_type: str) -> World:
    """Join the process group torchrun set up (NCCL on GPUs, gloo on CPUs); a process that torchrun
    did not start is World(), and trains as it always did."""
    if "LOCAL_RANK" not in os.environ:
        return World()
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]), True)
    if device_type == "cuda":
        torch.cuda.set_device(world.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return world


def stop(world: World) -> None:
    if world.group and dist.is_initialized():
        dist.destroy_process_group()


def prepare(
    model: torch.nn.Module, parallel: str, world: World, device: torch.device, compile: bool, mode: str | None = None
):
    """(forward, module): what the training step calls, and the module whose gradient sync
    `accumulating` holds back. FSDP shards the model in place before compiling it (so each block's
    gathers are in the graph); DDP wraps the compiled model, as nanoGPT does, so that compilation
    sees the whole model and DDP's hooks only all-reduce the gradients it produces. A process
    group of one has nothing to all-reduce: no wrapper (on an H200, DDP's machinery on one rank
    cost 2% at GPT-2 small and 4-15% at medium; bench/NOTES-throughput.md)."""
    if world.size > 1 and parallel == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in model.layers:  # one all-gather per block, the usual FSDP granularity
            fully_shard(block)
        fully_shard(model)
        return (torch.compile(model, mode=mode) if compile else model), model
    forward = torch.compile(model, mode=mode) if compile else model
    if world.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(
            forward, device_ids=[device.index] if device.type == "cuda" else None, gradient_as_bucket_view=True
        )  # no copy of the gradients into buckets
    return forward, forward


@contextlib.contextmanager
def accumulating(module: torch.nn.Module, last: bool):
    """Skip the gradient all-reduce for every micro-batch but the last of a step."""
    if last:
        yield
    elif hasattr(module, "no_sync"):  # DDP
        with module.no_sync():
            yield
    elif hasattr(module, "set_requires_gradient_sync"):  # FSDP2
        module.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            module.set_requires_gradient_sync(True)
    else:
        yield


def reshard(model: torch.nn.Module) -> None:
    """After a forward outside the training step (evaluation, statistics): FSDP keeps the root's
    gathered weights for the backward that usually follows; free them, so the next step gathers
    the updated shards instead of reusing stale weights."""
    if hasattr(model, "reshard"):
        for module in model.modules():
            if hasattr(module, "reshard"):
                module.reshard()


def mean(x: torch.Tensor, world: World) -> torch.Tensor:
    """The mean of a scalar over the ranks (every rank gets it)."""
    if world.size == 1:
        return x
    x = x.detach().clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x / world.size


def gather(obj, world: World) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if world.size == 1:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def full_state(model: torch.nn.Module, opts: list, world: World) -> tuple[dict, list[dict]]:
    """Whole (unsharded) model and optimizer state dicts; under FSDP they are gathered to rank 0 (empty
    elsewhere). Every rank must call this."""
    if world.size == 1 or not sharded(model):
        return model.state_dict(), [o.state_dict() for o in opts]
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return (
        get_model_state_dict(model, options=options),
        [get_optimizer_state_dict(model, o, options=options) for o in opts],
    )


def load_full_state(model: torch.nn.Module, opts: list, model_sd: dict, opt_sds: list[dict], world: World) -> None:
    """The inverse of full_state: every rank passes the whole state dicts read from a checkpoint."""
    if world.size == 1 or not sharded(model):
        model.load_state_dict(model_sd)
        for o, sd in zip(opts, opt_sds):
            o.load_state_dict(sd)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict, set_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, model_sd, options=options)
    for o, sd in zip(opts, opt_sds):
        set_optimizer_state_dict(model, o, sd, options=options)


def sharded(model: torch.nn.Module) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())
