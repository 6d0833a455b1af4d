"""`ladder lm-eval --size S`: EleutherAI's lm-evaluation-harness on a trained size, offline.

lm-eval scores the size's Hugging Face export (`ladder export-hf`, which has checked that
`transformers` reproduces our logits) with its own `hf` model, so the figures come from code that is
not ours. The default tasks are the project's own (workflow/lm_eval/, documents from the val split:
tools/lm_eval_tasks.py): bits per byte, the cloze items and a LAMBADA-style last word; the first two
are printed beside eval.json's figures. Tasks lm-eval ships (`--tasks hellaswag`) need their data
from the hub. Needs the `eval` extra: pip install -e '.[eval]'.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ladder.core import paths
from ladder.core.config import load
from ladder.core.files import LadderError, read_json, write_json
from ladder.core.progress import log
from ladder.tools import lm_eval_tasks

# lm-eval's figure beside the eval.json key that measures the same thing: (task, metric) -> key
SAME_AS_EVAL = {("ladder_val", "bits_per_byte"): "val_bits_per_byte", ("ladder_cloze", "acc_bytes"): "cloze"}


def hf_folder(size: str, folder: Path | None) -> Path:
    """The export to score; refused if missing, or older than the weights it was made from."""
    folder = folder or paths.Size(size).hf
    config = folder / "config.json"
    if not config.exists():
        raise LadderError(f"no Hugging Face export at {folder}: run `ladder export-hf --size {size}` first")
    model = paths.Size(size).model
    if model.exists() and model.stat().st_mtime > config.stat().st_mtime:
        raise LadderError(f"{folder} is older than {model}: rerun `ladder export-hf --size {size}`")
    return folder


def run(size: str, tasks: list[str], folder: Path | None, limit: int | None, batch_size: int, params_file) -> dict:
    folder = hf_folder(size, folder)  # before lm-eval's import, which takes seconds
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise LadderError("lm-eval is not installed: pip install -e '.[eval]'") from None
    local = [t for t in tasks if t in lm_eval_tasks.FILES]
    offline = len(local) == len(tasks)
    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only: never wait on the hub
    lm_eval_tasks.write(local, load(params_file), size)
    # lm-eval's own ~10k task files are indexed only when a task of theirs is asked for
    manager = TaskManager(include_path=str(paths.LM_EVAL_TASKS), include_defaults=not offline)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise LadderError(f"--tasks: unknown to lm-eval: {', '.join(unknown)} (local ones: "
                          f"{', '.join(lm_eval_tasks.FILES)}; `lm_eval ls tasks` lists the rest)")
    out = lm_eval.simple_evaluate(model="hf", model_args={"pretrained": str(folder), "dtype": "float32"},
                                  tasks=tasks, task_manager=manager, device="cpu", batch_size=batch_size,
                                  limit=limit, log_samples=False)
    result = {"size": size, "model": str(folder), "lm_eval_version": lm_eval.__version__,
              "limit": limit, "results": out["results"], "versions": out.get("versions", {})}
    write_json(paths.Size(size).lm_eval, result)
    return result


def report(result: dict) -> str:
    """One line per task and metric, eval.json's figure beside lm-eval's where both measure the same."""
    ours = paths.Size(result["size"]).eval
    mine = read_json(ours) if ours.exists() else {}
    lines = []
    for task, metrics in result["results"].items():
        for key, value in metrics.items():
            name, _, _ = key.partition(",")
            if isinstance(value, float) and not name.endswith("_stderr"):
                same = SAME_AS_EVAL.get((task, name))
                extra = f"   (eval.json: {mine[same]})" if same in mine else ""
                lines.append(f"{task:<18} {name:<16} {value:.5g}{extra}")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", required=True, help="a trained and exported size (reads results/<size>/hf/)")
    p.add_argument("--tasks", default=",".join(lm_eval_tasks.FILES),
                   help="comma-separated lm-eval tasks (default: the project's three, on the val split, offline)")
    p.add_argument("--model-dir", type=Path, help="the export to score (default: results/<size>/hf)")
    p.add_argument("--limit", type=int, help="score at most this many documents per task (default: all)")
    p.add_argument("--batch-size", type=int, default=8, help="documents per forward pass (default: 8)")


def main(args) -> None:
    result = run(args.size, [t for t in args.tasks.split(",") if t], args.model_dir, args.limit, args.batch_size,
                 args.params)
    print(report(result))
    log.info("lm-eval@%s: wrote %s", args.size, paths.Size(args.size).lm_eval)
