"""`ladder lm-eval --size S`: EleutherAI's lm-evaluation-harness on a trained size, offline.

lm-eval scores the size's Hugging Face export (`ladder export-hf`, which has checked that
`transformers` reproduces our logits) with its own `hf` model, so the figures come from code that is
not ours. The default tasks are the project's own (workflow/lm_eval/), on documents written here from
the val split, text the model never trained on: ladder_val (each document scored by rolling
log-likelihood: bits per byte, as eval.json's), ladder_cloze (the very items eval@size scored, each
choice cut where eval cuts it, so acc_bytes checks eval.json's cloze) and ladder_last_word
(LAMBADA-style: a document up to its last sentence, the final word to be predicted from everything
before it). The first two are printed beside eval.json's figures. Tasks lm-eval ships
(`--tasks hellaswag`) need their data from the hub. Needs the `eval` extra: pip install -e '.[eval]'.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ladder.data import tokens
from ladder.data.cloze import SENTENCE_END, cloze_items
from ladder.pipeline import options, paths
from ladder.pipeline.config import Params, load
from ladder.pipeline.files import LadderError, atomic, need, read_json, write_json
from ladder.pipeline.progress import log

TASK_FILES = {"ladder_val": "val.jsonl", "ladder_cloze": "cloze.jsonl", "ladder_last_word": "last_word.jsonl"}
CLOSERS = ".!?\"')]"  # what may follow a sentence's last word


def val_texts() -> list[str]:
    return [json.loads(line)["text"] for line in need(paths.SPLITS["val"], "val split").read_text().splitlines()]


def last_word(text: str) -> dict | None:
    """The document up to the end of its last sentence that closes on a word, split before that word."""
    sentences = SENTENCE_END.split(" ".join(text.split()))
    for i in range(len(sentences) - 1, -1, -1):
        head, _, word = sentences[i].rpartition(" ")
        word = word.rstrip(CLOSERS)
        if head and word.isalpha():
            return {"context": " ".join([*sentences[:i], head]), "word": word}
    return None


def cloze(params: Params, size: str) -> list[dict]:
    """eval's cloze items with each choice cut to the tokens eval scores of it (half the size's context)."""
    tok, block = tokens.load(), read_json(paths.RunFiles(size).config)["block_size"]
    cut = lambda choice: tok.decode(tok.encode(" " + choice).ids[: block // 2]).strip()  # noqa: E731
    return [item | {"choices": [cut(c) for c in item["choices"]]} for item in cloze_items(params.eval, params.seed)]


def documents(task: str, params: Params, size: str) -> list[dict]:
    if task == "ladder_val":
        return [{"text": t} for t in val_texts()]
    if task == "ladder_cloze":
        return cloze(params, size)
    return [d for d in map(last_word, val_texts()) if d]


def write_documents(tasks: list[str], params: Params, size: str) -> None:
    """Each local task's documents for this size as jsonl under results/lm_eval/ (the paths its YAML names)."""
    for task in tasks:
        out = paths.LM_EVAL_DATA / TASK_FILES[task]
        with atomic(out) as (tmp,):
            tmp.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in documents(task, params, size)))


# lm-eval's figure beside the eval.json key that measures the same thing: (task, metric) -> key
SAME_AS_EVAL = {("ladder_val", "bits_per_byte"): "val_bits_per_byte", ("ladder_cloze", "acc_bytes"): "cloze"}


def hf_folder(size: str, folder: Path | None) -> Path:
    """The export to score; refused if missing, or older than the weights it was made from."""
    folder = folder or paths.RunFiles(size).hf
    config = folder / "config.json"
    if not config.exists():
        raise LadderError(f"no Hugging Face export at {folder}: run `ladder export-hf --size {size}` first")
    model = paths.RunFiles(size).model
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
    local = [t for t in tasks if t in TASK_FILES]
    offline = len(local) == len(tasks)
    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only: never wait on the hub
    write_documents(local, load(params_file), size)
    # lm-eval's own ~10k task files are indexed only when a task of theirs is asked for
    manager = TaskManager(include_path=str(paths.LM_EVAL_TASKS), include_defaults=not offline)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise LadderError(
            f"--tasks: unknown to lm-eval: {', '.join(unknown)} (local ones: "
            f"{', '.join(TASK_FILES)}; `lm_eval ls tasks` lists the rest)"
        )
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(folder), "dtype": "float32"},
        tasks=tasks,
        task_manager=manager,
        device="cpu",
        batch_size=batch_size,
        limit=limit,
        log_samples=False,
    )
    result = {
        "size": size,
        "model": str(folder),
        "lm_eval_version": lm_eval.__version__,
        "limit": limit,
        "results": out["results"],
        "versions": out.get("versions", {}),
    }
    write_json(paths.RunFiles(size).lm_eval, result)
    return result


def report(result: dict) -> str:
    """One line per task and metric, eval.json's figure beside lm-eval's where both measure the same."""
    ours = paths.RunFiles(result["size"]).eval
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
    p.add_argument(
        "--tasks",
        default=",".join(TASK_FILES),
        help="comma-separated lm-eval tasks (default: the project's three, on the val split, offline)",
    )
    p.add_argument("--model-dir", type=Path, help="the export to score (default: results/<size>/hf)")
    p.add_argument("--limit", type=options.integer(1), help="score at most this many documents per task (default: all)")
    p.add_argument("--batch-size", type=options.integer(1), default=8, help="documents per forward pass (default: 8)")


def main(args) -> None:
    result = run(
        args.size, [t for t in args.tasks.split(",") if t], args.model_dir, args.limit, args.batch_size, args.params
    )
    print(report(result))
    log.info("lm-eval@%s: wrote %s", args.size, paths.RunFiles(args.size).lm_eval)
