"""Whether a stage's large outputs are still the files its manifest recorded.

Snakemake judges files by their dates, so it would call a truncated model or a shard overwritten
in place "up to date". The manifests hold the sha256 of every large output (and train.json that of
the config.json that shapes its model), and the Snakefile
checks them on every invocation (stamps.write_snapshots): a stage whose outputs differ is stale,
and reruns with everything downstream. A file is hashed again only when its size or date moved
since it last matched (.ladder/verified.json), so an invocation costs a few stat() calls.
"""

from __future__ import annotations

import json
from pathlib import Path

from ladder.pipeline import dag, paths
from ladder.pipeline.files import atomic_write_text, read_json, sha256_file

RECORD = paths.SNAPSHOTS.parent / "verified.json"  # path -> [size, mtime_ns, sha256] when it last matched


# What shapes a model, recorded by the manifest beside it: manifest key -> file in the manifest's folder.
# train.json records its config.json's (a size's, a cell's and a rung's): an edited shape reruns training.
BESIDE = {"config_sha256": "config.json"}


def recorded(stage: str, size: str | None = None) -> list[tuple[Path, str]]:
    """(output, the sha256 its manifest recorded) for each of the stage's hashed outputs: its large ones,
    and the small ones beside the manifest that shape a model."""
    manifest = dag.manifest(stage, size)
    m = read_json(manifest)
    beside = [(manifest.with_name(name), m[key]) for key, name in BESIDE.items() if key in m]
    return dag.STAGES[stage].hashed(m, dag.Names(run=size)) + beside


def damaged(jobs: list[tuple[str, str | None]]) -> set[tuple[str, str | None]]:
    """The jobs among `jobs` (each with a manifest) whose hashed outputs are missing or differ from
    what the manifest recorded, or whose manifest does not say."""
    try:
        seen = read_json(RECORD)
    except (OSError, ValueError):
        seen = {}
    verified, bad = {}, set()
    for job in jobs:
        try:
            for path, sha in recorded(*job):
                st = path.stat()
                key = [st.st_size, st.st_mtime_ns, sha]
                if seen.get(str(path)) != key and sha256_file(path) != sha:
                    raise ValueError(f"{path}: sha256 differs")
                verified[str(path)] = key
        except (OSError, ValueError, KeyError, TypeError):
            bad.add(job)
    if verified != seen:
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(RECORD, json.dumps(verified, indent=0, sort_keys=True) + "\n")
    return bad
