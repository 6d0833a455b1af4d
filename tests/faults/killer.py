"""SIGKILL stages at seeded random points, then run them again to the end.

Usage (in a project): python killer.py PLAN.json; writes .faults-kills.json. The plan is a list of
{stage, argv, kills, seed, window, outputs, volatile, clear, checkpoints (optional: {state, steps} to
kill after one of those steps' checkpoints)}. Imports happen once here; each run is a forked child
that runs `ladder.cli.main(argv)` exactly as the command would, so a kill costs no interpreter
start. Per stage: one uninterrupted run (the reference, timed), then for each kill a child killed
after a random delay within that time, a snapshot of the project before and after it, and a
second child that runs to the end; its outputs must equal the reference's, bit for bit (JSON files
without the keys that time the run).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from faultlib import changed, snapshot, temps  # noqa: E402

from ladder import cli  # noqa: E402

TIMING = ("seconds", "per_s", "_at")  # keys that time a run (or date it: started_at), not what it computed


def untimed(obj):
    if isinstance(obj, dict):
        return {k: untimed(v) for k, v in obj.items() if not any(t in k for t in TIMING)}
    if isinstance(obj, list):
        return [untimed(v) for v in obj]
    return obj


def fingerprint(outputs: list[str]) -> dict[str, str]:
    """sha256 of each output (every file of a folder); JSON files without their timings."""
    out = {}
    for rel in outputs:
        p = Path(rel)
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            if not f.is_file():
                continue
            data = f.read_bytes()
            if f.suffix == ".json":
                data = json.dumps(untimed(json.loads(data)), sort_keys=True).encode()
            out[f.as_posix()] = hashlib.sha256(data).hexdigest()
        if not p.exists():
            out[rel] = "missing"
    return out


def child(argv: list[str], log: str) -> int:
    pid = os.fork()
    if pid == 0:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)
        os.dup2(fd, 1)
        try:
            rc = cli.main(argv)
        except BaseException:  # noqa: BLE001 - any crash is a failed run
            rc = 99
        os._exit(rc)
    return pid


def finish(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def wait_for_step(state: str, step: int, pid: int) -> None:
    """Until the checkpoint in `state` (a state.json) has reached `step`, or the run has ended."""
    while step and os.waitpid(pid, os.WNOHANG) == (0, 0):
        try:
            if json.loads(Path(state).read_text())["step"] >= step:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.005)


def kills(spec: dict) -> list[dict]:
    argv, log = spec["argv"], f".ladder/faults-{spec['stage']}.log"
    importlib.import_module(f"ladder.{cli.COMMANDS[argv[0]][0]}")
    Path(log).parent.mkdir(exist_ok=True)
    t0 = time.time()
    rc = finish(child(argv, log))
    took = time.time() - t0
    assert rc == 0, f"{spec['stage']}: the uninterrupted run exited {rc}: {Path(log).read_text()[-2000:]}"
    reference = fingerprint(spec["outputs"])
    rng, cases = random.Random(spec["seed"]), []
    for _ in range(spec["kills"]):
        delay = took * rng.uniform(*spec["window"])  # a share of the uninterrupted run's time
        for rel in spec["clear"]:  # e.g. the checkpoint, so that the killed run starts from scratch
            shutil.rmtree(rel, ignore_errors=True)
        before = snapshot(Path("."))
        pid = child(argv, log)
        if "checkpoints" in spec:  # after a random number of checkpoints, then a random share of a step
            wait_for_step(spec["checkpoints"]["state"], rng.choice(spec["checkpoints"]["steps"]), pid)
        time.sleep(delay)
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            os.kill(pid, signal.SIGKILL)
            status = os.waitpid(pid, 0)[1]
        killed = os.waitstatus_to_exitcode(status)
        lost = [f for f in changed(before, snapshot(Path("."))) if not f.startswith(tuple(spec["volatile"]))]
        rc = finish(child(argv, log))
        text = Path(log).read_text()
        resumed = next(
            (
                int(line.split("resuming from step ")[1].split()[0])
                for line in text.splitlines()
                if "resuming from step " in line
            ),
            0,
        )
        cases.append(
            {
                "delay": round(delay, 3),
                "of": round(took, 3),
                "killed": killed == -signal.SIGKILL,
                "lost": lost,
                "rc": rc,
                "log": text[-2000:],
                "resumed_from": resumed,
                "same": fingerprint(spec["outputs"]) == reference,
                "temps": temps(Path(".")),
            }
        )
    return cases


def warm() -> None:
    """Build a model on the meta device once before forking: the first time imports for seconds."""
    from ladder.nn import cost
    from ladder.pipeline import config

    cost.estimate(config.load(), "tiny", 512)


def main() -> None:
    warm()
    plan = json.loads(Path(sys.argv[1]).read_text())
    results = {spec["stage"]: kills(spec) for spec in plan}
    Path(".faults-kills.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
