"""One run of each stage job at a time in a project.

Snakemake and DVC know nothing of each other's jobs, so run together they would train the same
size in one folder. Every stage job (`train@tiny`, `shard`, ...) holds an exclusive lock on
.ladder/locks/<job> while it runs; a second run of it, from any tool, is refused in one line naming
the holder. Different jobs keep running side by side (a GPU profile's parallel jobs, SLURM's). The
kernel releases the lock when the holder dies, however it dies, so a killed run leaves none behind.
A second Snakemake asks `busy()` first and stops in one line, rather than calling the running jobs'
files "incomplete".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Iterator

from ladder.core.files import LadderError
from ladder.core.paths import LOCKS


def busy() -> list[str]:
    """One line per stage job whose lock a live process holds: "<lock>: locked by PID … running `…`"."""
    lines = []
    for path in sorted(LOCKS.glob("*")) if LOCKS.is_dir() else []:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            lines.append(_holder(path, fd))
        finally:
            os.close(fd)
    return lines


def _holder(path, fd: int) -> str:
    pid, _, cmd = os.pread(fd, 4096, 0).decode(errors="replace").strip().partition(" ")
    return f"{path}: locked by PID {pid or '?'} running `{cmd or '?'}`"


@contextlib.contextmanager
def held(job: str, command: str) -> Iterator[None]:
    """Hold the lock of stage `job` around `command`. A torchrun rank runs under the launching process,
    which already holds it (the lock's file descriptor survives `ladder train`'s exec of torchrun)."""
    if "LOCAL_RANK" in os.environ:
        yield
        return
    path = LOCKS / job
    try:
        LOCKS.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise LadderError(f"{path}: cannot take the lock of {job} ({e.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(path, fd)
        os.close(fd)
        raise LadderError(f"{holder}; wait for it to finish (or stop it) and run this again") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
    os.set_inheritable(fd, True)
    try:
        yield
    finally:
        os.close(fd)
