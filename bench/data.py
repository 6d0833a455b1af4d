"""Benchmark the data stages on a large corpus: MB/s, tokens/s and peak RSS per stage.

    python bench/data.py [--corpus ../shared/data/wiki-large.txt.xz] [--vocab 8192] [--workdir DIR]

Runs download, subset, tokenizer, shard and curriculum as the pipeline does (`ladder <stage>` in a
scratch copy of the project), then measures the raw speed of `tokenizers`' own `encode_batch` on
the same text with the same threads, and prints how close the shard stage comes to it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["download", "subset", "tokenizer", "shard", "curriculum"]


def scratch_project(workdir: Path, corpus: Path, vocab: int) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in files:
        if (ROOT / rel).is_file():
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, workdir / rel)
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["data"].update(source=str(corpus.resolve()), max_bytes=None)
    params["tokenizer"]["vocab_size"] = vocab
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return workdir


def run_stage(project: Path, stage: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one `ladder <stage>` process."""
    env = {**os.environ, "LADDER_PROGRESS": "0", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(["ladder", stage], cwd=project, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"ladder {stage} failed")
    return wall, usage.ru_maxrss / 1024


def raw_encode_rate(project: Path) -> float:
    """MB/s of tokenizers' encode_batch alone on the train and val text, batches as the shard stage uses."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(project / "data/tokenizer/tokenizer.json"))
    texts = []
    for split in ("train", "val"):
        with open(project / f"data/subset/{split}.jsonl") as f:
            texts += [json.loads(line)["text"] for line in f]
    n_bytes = sum(len(t) for t in texts)
    t0 = time.perf_counter()
    for i in range(0, len(texts), 1024):
        tok.encode_batch(texts[i : i + 1024], add_special_tokens=False)
    return n_bytes / 1e6 / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/data/wiki-large.txt.xz")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()
    if not args.corpus.exists():
        raise SystemExit(f"{args.corpus}: no such corpus (pass --corpus)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ladder-bench-"))
    project = scratch_project(workdir, args.corpus, args.vocab)
    print(
        f"corpus {args.corpus} ({args.corpus.stat().st_size / 1e6:.1f} MB compressed), vocab {args.vocab}, "
        f"{len(os.sched_getaffinity(0))} cores, scratch {project}",
        flush=True,
    )

    rows = []
    for stage in STAGES:
        wall, rss = run_stage(project, stage)
        rows.append((stage, wall, rss))
    text_mb = json.loads((project / "data/raw/manifest.json").read_text())["text_bytes"] / 1e6
    subset = json.loads((project / "data/subset/stats.json").read_text())["kept"]
    kept_mb = (subset["train"]["bytes"] + subset["val"]["bytes"]) / 1e6
    index = json.loads((project / "data/shards/index.json").read_text())
    tokens = index["train"]["tokens"] + index["val"]["tokens"]
    raw = raw_encode_rate(project)

    print(f"\n{'stage':<12}{'seconds':>9}{'MB/s':>9}{'Mtok/s':>9}{'peak RSS MB':>13}")
    for stage, wall, rss in rows:
        mb = text_mb if stage in ("download", "subset") else kept_mb
        tok_s = f"{tokens / wall / 1e6:>9.2f}" if stage in ("shard", "curriculum") else f"{'':>9}"
        print(f"{stage:<12}{wall:>9.1f}{mb / wall:>9.2f}{tok_s}{rss:>13.0f}")
    shard_rate = kept_mb / dict((s, w) for s, w, _ in rows)["shard"]
    print(
        f"\nraw encode_batch: {raw:.2f} MB/s; shard stage: {shard_rate:.2f} MB/s "
        f"= {100 * shard_rate / raw:.0f}% of raw (target >= 90%)"
    )
    print(
        f"tokens: {tokens / 1e6:.1f}M; bytes/token on val: "
        f"{json.loads((project / 'data/tokenizer/report.json').read_text())['bytes_per_token']}"
    )


if __name__ == "__main__":
    main()
