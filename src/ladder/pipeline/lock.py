"""One run builds a project at a time, and one run of each stage job.

Snakemake and DVC know nothing of each other's jobs: run together they trained the same size in
one folder, and DVC removed `live/` under Snakemake's job. Two kinds of lock keep them apart, both
flock()s under .ladder/locks/, which the kernel releases when the holder dies, however it dies, so
a killed run leaves none behind:

- the project lock (`project`): a Snakemake run holds it exclusively from the moment the Snakefile
  is read (`hold_run`) and passes its PID to its jobs (LADDER_RUN); every other stage command (run
  by DVC or by hand) holds it shared while it runs (`project`). So a `dvc repro` while Snakemake
  runs stops at its first stage, in one line naming the Snakemake run, before that stage writes
  anything (dvc.yaml's outputs are persistent: DVC deletes none of them before the command runs);
  and a Snakemake started while DVC runs a stage, or holds its own repo lock (.dvc/tmp/lock) between
  stages, stops in one line naming it, before it deletes any job's outputs.
- a job lock (`held`): every stage job (`train@tiny`, `shard`, ...) holds an exclusive lock on
  .ladder/locks/<job> while it runs; a second run of it, from any tool, is refused in one line
  naming the holder. Different jobs keep running side by side (a GPU profile's parallel jobs,
  SLURM's, two stages by hand).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ladder.pipeline.files import LadderError, open_owned
from ladder.pipeline.paths import LOCKS

PROJECT = LOCKS / "project"  # not a job: no stage is named so
RUN_ENV = "LADDER_RUN"  # the PID of the Snakemake run a job belongs to
DVC_LOCK = Path(".dvc/tmp/lock")  # DVC's repo lock (zc.lockfile: a flock, the holder's PID inside)
AGAIN = "wait for it to finish (or stop it) and run this again"
_run_fd: int | None = None  # the project lock this process holds as a Snakemake run


def _flock(fd: int, op: int) -> None:
    """flock without waiting for a holder, but past another process's probe of a few microseconds
    (`busy`, a Snakemake starting): BlockingIOError only if the lock stays held for 0.1 s."""
    for attempt in range(5):
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if attempt == 4:
                raise
            time.sleep(0.025)


def busy(jobs_only: bool = False) -> list[str]:
    """One line per lock a live process holds exclusively (a stage job, or a Snakemake run holding the
    project): "<lock>: locked by PID … running `…`"."""
    lines = []
    for path in sorted(LOCKS.glob("*")) if LOCKS.is_dir() else []:
        if jobs_only and path == PROJECT:
            continue
        try:
            fd = open_owned(path, os.O_RDONLY)
        except (OSError, LadderError):  # gone meanwhile, or a link: no process holds it
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


def _open(path: Path, job: str) -> int:
    try:
        LOCKS.mkdir(parents=True, exist_ok=True)
        return open_owned(path)
    except OSError as e:
        raise LadderError(f"{path}: cannot take the lock of {job} ({e.strerror})") from None


def _dvc_holder() -> str | None:
    """DVC's repo lock, if a DVC command holds it: DVC holds it while it plans, hashes and commits, and
    lets it go while a stage's command runs (that command holds the project lock then)."""
    try:
        fd = open_owned(DVC_LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a DVC starting meanwhile retries for 3 s
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        pid = os.pread(fd, 64, 0).decode(errors="replace").strip()
    finally:
        os.close(fd)
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        cmd = " ".join(["dvc", *argv[next(i for i, a in enumerate(argv) if Path(a).name == "dvc") + 1 :]]).strip()
    except (OSError, StopIteration):
        cmd = "dvc"
    return f"{DVC_LOCK}: locked by PID {pid or '?'} running `{cmd}`"


def hold_run(command: str) -> str | None:
    """Hold the project for this Snakemake run, till the process ends; its jobs know it by LADDER_RUN.
    Refused (the holder's line returned) while DVC holds its repo lock, another Snakemake the project,
    or any stage job runs here."""
    global _run_fd
    if _run_fd is not None:  # the Snakefile read again by the same run
        return None
    if held := _dvc_holder():
        return held
    fd = _open(PROJECT, "the project")
    try:
        _flock(fd, fcntl.LOCK_EX)
    except BlockingIOError:
        try:  # shared holders are stage commands, each naming itself in its job lock once it has parsed its options
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            jobs = busy(jobs_only=True)
            return jobs[0] if jobs else f"{PROJECT}: locked by a stage command that is starting"
        except BlockingIOError:
            return _holder(PROJECT, fd)
        finally:
            os.close(fd)
    if jobs := busy(jobs_only=True):  # a job's lock held without the project's (a test's stand-in, an older ladder)
        os.close(fd)
        return jobs[0]
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
    _run_fd = fd
    os.environ[RUN_ENV] = str(os.getpid())
    return None


@contextlib.contextmanager
def project(command: str) -> Iterator[None]:
    """Hold the project lock shared around stage `command`, unless it is a job of the Snakemake run
    that holds it; refused in one line naming that run otherwise. The lock's file descriptor survives
    `ladder train`'s exec of torchrun; its ranks run under the launching process (LOCAL_RANK)."""
    if "LOCAL_RANK" in os.environ:
        yield
        return
    fd = _open(PROJECT, "the project")
    try:
        _flock(fd, fcntl.LOCK_SH)
    except BlockingIOError:
        holder = _holder(PROJECT, fd)
        pid = os.pread(fd, 64, 0).decode(errors="replace").partition(" ")[0]
        os.close(fd)
        if pid != os.environ.get(RUN_ENV):
            raise LadderError(f"{holder}; {AGAIN}") from None
        fd = None  # a job of the run that holds the project
    if fd is not None:
        os.set_inheritable(fd, True)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def held(job: str, command: str) -> Iterator[None]:
    """Hold the lock of stage `job` around `command`. A torchrun rank runs under the launching process,
    which already holds it (the lock's file descriptor survives `ladder train`'s exec of torchrun)."""
    if "LOCAL_RANK" in os.environ:
        yield
        return
    path = LOCKS / job
    fd = _open(path, job)
    try:
        _flock(fd, fcntl.LOCK_EX)
    except BlockingIOError:
        holder = _holder(path, fd)
        os.close(fd)
        raise LadderError(f"{holder}; {AGAIN}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
    os.set_inheritable(fd, True)
    try:
        yield
    finally:
        os.close(fd)
