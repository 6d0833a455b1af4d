"""What a run left in results/, read one way by every command that shows runs (`ladder summary`, `ladder log`).

An evaluated size is its eval.json (the headline metrics) and eval_provenance.json (the rest); a sweep
cell or a scaling rung is its train.json alone, since its result is its loss. Files
are read through `read(path)`, which gives None for a missing file, so that a DVC experiment's copy
of a size is read by the same code as the workspace's and the two cannot be reported differently.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ladder.pipeline import paths
from ladder.pipeline.files import LadderError, read_json

Reader = Callable[[Path], "dict | None"]


def workspace(path: Path) -> dict | None:
    return read_json(path) if Path(path).exists() else None


def evaluated_sizes() -> list[str]:
    """The sizes with eval results in the workspace."""
    return sorted(f.parent.name for f in paths.RESULTS.glob("*/eval.json"))


# what tables read from an evaluation: numbers (dotted: nested), checked before any is shown
EVAL_NUMBERS = ("val_loss", "val_bits_per_byte", "tokens_trained", "train_seconds")
PROVENANCE_NUMBERS = ("params", "val.unigram_bits_per_byte", "val.perplexity", "train_tokens_per_s")


def _numbers(doc, keys: tuple[str, ...], file: str, size: str) -> None:
    """A file whose fields a table reads is refused in one line naming the field, not a KeyError later."""
    for key in keys:
        node = doc
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, bool) or not isinstance(node, int | float):
            raise LadderError(f"{file}: field {key!r} missing or not a number (rerun `ladder eval --size {size}`)")


def evaluation(size: str, read: Reader = workspace, where: str = "") -> dict:
    """A size's eval.json, the details tables show from its eval_provenance.json, and that whole file
    under "provenance". `where` names a copy other than the workspace in errors."""
    out = paths.RunFiles(size)
    metrics = read(out.eval)
    if metrics is None:
        raise LadderError(f"{where}{out.eval}: missing (run `ladder eval --size {size}`)")
    p = read(out.provenance)
    if p is None:
        raise LadderError(f"{where}{out.provenance}: missing beside {out.eval} (rerun `ladder eval --size {size}`)")
    _numbers(metrics, EVAL_NUMBERS, f"{where}{out.eval}", size)
    _numbers(p, PROVENANCE_NUMBERS, f"{where}{out.provenance}", size)
    if metrics.get("cloze") is not None:
        _numbers(metrics, ("cloze",), f"{where}{out.eval}", size)
        _numbers(p, ("cloze.items", "cloze.chance"), f"{where}{out.provenance}", size)
    samples = p.get("samples", [])
    if not isinstance(samples, list) or not all(isinstance(x, dict) for x in samples):
        raise LadderError(f"{where}{out.provenance}: field 'samples' is not a list of samples (rerun `ladder eval`)")
    return metrics | {
        "size": size,
        "params": p["params"],
        "unigram_bits_per_byte": p["val"]["unigram_bits_per_byte"],
        "val_perplexity": p["val"]["perplexity"],
        "train_tokens_per_s": p["train_tokens_per_s"],
        "provenance": p,
    }


def evaluations(sizes: list[str], read: Reader = workspace, where: str = "") -> list[dict]:
    """`evaluation` of each size, smallest first."""
    return sorted((evaluation(s, read, where) for s in sizes), key=lambda r: r["params"])


def trained(folder: paths.RunFiles, read: Reader = workspace) -> dict | None:
    """A training run's train.json, named; None when it has not finished."""
    summary = read(folder.summary)
    return None if summary is None else summary | {"name": folder.name}
