#!/usr/bin/env python3
"""Check a comparison against the real thing: train a size in both arms at several seeds and set the measured
difference beside the one `ladder compare` predicted for it.

    python bench/compare_check.py VARIANT [--size small] [--seeds 1337 1]

Reads results/compare/VARIANT/compare.json (build it first: `ladder compare VARIANT`), then trains the size
once per arm and seed, through the train stage's own code on the size's plan: the baseline with params.yaml
as it is, the variant with compare.variants.VARIANT applied. A seed changes the initial draw only (the data
order is the curriculum plan's), as it does for the rungs and their replicas. Each run writes
results/<size>-<arm>-s<seed>/, apart from the size's own results. Prints the table and writes
results/compare/VARIANT/check-<size>.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ladder.pipeline import paths
from ladder.pipeline.config import load
from ladder.pipeline.files import atomic, read_json, write_json
from ladder.stages import train


def trained(params, size: str, arm: str, seed: int) -> dict:
    """One run of `size` in `arm` at `seed`, as a size of its own name (so its folder is its own)."""
    name = f"{size}-{arm}-s{seed}"
    update = {
        "seed": seed,
        "sizes": {**params.sizes, name: params.sizes[size]},
        "pipeline": params.pipeline.model_copy(
            update={"sizes": {**params.pipeline.sizes, name: params.plan_for(size)}}
        ),
    }
    t0 = time.time()
    summary = train.run(params.model_copy(update=update), name)
    return {"arm": arm, "seed": seed, "val_loss": summary["final_val_loss"], "seconds": round(time.time() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variant", help="a variant under compare.variants with its compare.json built")
    ap.add_argument("--size", default="small", help="the size to train in both arms (default: %(default)s)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1337, 1], help="seeds (default: %(default)s)")
    a = ap.parse_args()
    params = load("params.yaml")
    files = paths.CompareFiles(a.variant)
    report = read_json(files.report)
    predicted = next(x for x in report["sizes"] if x["size"] == a.size)
    arms = {"baseline": params, "variant": params.variant(a.variant)}
    runs = [trained(arms[arm], a.size, arm, seed) for seed in a.seeds for arm in arms]
    by = {(r["arm"], r["seed"]): r["val_loss"] for r in runs}
    diffs = np.array([by["variant", s] / by["baseline", s] - 1 for s in a.seeds])
    base = np.array([by["baseline", s] for s in a.seeds])
    lo, hi = predicted["interval"]
    result = {
        "variant": a.variant,
        "size": a.size,
        "predicted": {
            "relative": predicted["relative"],
            "interval": predicted["interval"],
            "verdict": predicted["verdict"],
        },
        "runs": runs,
        "measured": {
            "relative_per_seed": [round(float(d), 5) for d in diffs],
            "mean": round(float(diffs.mean()), 5),
            "spread": round(float(diffs.max() - diffs.min()), 5),
            "baseline_seed_spread": round(float(base.max() / base.min() - 1), 5),
        },
        "inside_interval": bool(lo <= diffs.mean() <= hi),
    }
    out = files.folder / f"check-{a.size}.json"
    with atomic(out) as (tmp,):
        write_json(tmp, result)
    print(f"{'seed':>6}{'baseline':>10}{'variant':>10}{'difference':>12}")
    for s, d in zip(a.seeds, diffs):
        print(f"{s:>6}{by['baseline', s]:>10.4f}{by['variant', s]:>10.4f}{100 * d:>+11.2f}%")
    print(
        f"{a.size}: measured {100 * diffs.mean():+.2f}% "
        f"(seeds {100 * diffs.min():+.2f}% to {100 * diffs.max():+.2f}%), "
        f"predicted {100 * predicted['relative']:+.2f}% ({100 * lo:+.2f}% to {100 * hi:+.2f}%): "
        f"{'inside' if result['inside_interval'] else 'outside'} the interval; wrote {out}"
    )


if __name__ == "__main__":
    main()
