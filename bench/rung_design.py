#!/usr/bin/env python3
"""What limits a prediction's interval at GPT-2 medium's size: rung designs within the FLOPs budget.

    python bench/rung_design.py [--draws 30] [--scatter 0.0026]

For each set of rung shapes at the GPU ladder's budget (30M tokens, a 32k vocabulary, sequences of
1,024), it prints the rungs' FLOPs as a share of medium's training (train.json's count: 6 x
parameters + attention, per token), how far medium's N lies beyond the largest rung, and medium's
90% interval over draws of rung losses from the law measured on an H200 (docs/scaling.md) with
`--scatter` (0.26%: that climb's):
- the median half-width from the refits and one run's scatter alone (no term for the law's form):
  the floor the statistics put under the interval;
- the whole interval as the fit states it (the extrapolation test's term for the form on top): its
  median and 90th-percentile half-width, and how often it held medium's loss (the law plus a fresh
  run's scatter). The law here has exactly the fitted form, so whatever the test charges is noise it
  mistook for the form: the spread of the half-width is what one left-out rung's noise costs.
"""

from __future__ import annotations

import argparse

import numpy as np

from ladder.analysis import scaling

VOCAB, SEQ, TOKENS = 32768, 1024, 30_015_488
MEDIUM_N, MEDIUM_FLOPS = 303_612_928, 6.98e16
DESIGNS = {
    "shipped": [(64, 2), (96, 3), (128, 3), (192, 4), (256, 6)],
    "4 shapes, cheaper": [(64, 2), (128, 2), (192, 3), (256, 6)],
    "6 shapes": [(64, 1), (64, 2), (96, 2), (128, 3), (192, 4), (256, 6)],
    "top w256-d8": [(64, 2), (128, 3), (192, 4), (256, 8)],
    "top w288-d7": [(64, 2), (96, 3), (128, 4), (288, 7)],
    "top w320-d6": [(64, 2), (128, 3), (192, 4), (320, 6)],
    "5, top far out": [(64, 1), (64, 2), (96, 2), (128, 3), (320, 6)],
}


def flops(width: int, depth: int) -> float:
    params = VOCAB * width + 12 * width * width * depth  # tied embedding, blocks
    return (6 * params + 12 * depth * SEQ * width) * TOKENS


def law(n):
    return 4.576 + 10.06 * np.power(n, -0.204)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=30, help="draws of rung losses per design (default: %(default)s)")
    ap.add_argument("--scatter", type=float, default=0.0026, help="one run's log scatter (default: %(default)s)")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    print(
        f"{'design':<20} {'FLOPs / medium':>15} {'largest N':>10} {'medium beyond':>14} {'statistics':>11} "
        f"{'whole: median':>14} {'90th pct':>9} {'held':>5}"
    )
    for name, shapes in DESIGNS.items():
        n = np.array([12 * w * w * d for w, d in shapes], dtype=float)
        floor, whole, held = [], [], []
        for i in range(a.draws):
            loss = law(n) * np.exp(rng.normal(0, a.scatter, len(n)))
            budget = scaling.build(TOKENS, n, loss, 40, 1e-3, sigma=a.scatter, seed=i)
            p = scaling.predict([budget], MEDIUM_N, TOKENS, 0.9, {"N": 0.0})
            floor.append((p.high - p.low) / 2 / p.value)
            if len(shapes) >= 5:  # the extrapolation test needs 5 shapes at a budget
                rungs = [dict(rung=f"r{j}", N=x, D=TOKENS, val_loss=y) for j, (x, y) in enumerate(zip(n, loss))]
                test = scaling.extrapolation_test(rungs, {TOKENS: budget}, 40, 1e-3, 0.9)
                p = scaling.predict([budget], MEDIUM_N, TOKENS, 0.9, test["per_efold"])
                whole.append((p.high - p.low) / 2 / p.value)
                held.append(p.low <= law(MEDIUM_N) * np.exp(rng.normal(0, a.scatter)) <= p.high)
        share = sum(flops(w, d) for w, d in shapes) / MEDIUM_FLOPS
        beyond = MEDIUM_N / n.max()
        tested = (
            f"{np.median(whole):>14.2%} {np.percentile(whole, 90):>9.2%} {np.mean(held):>5.2f}"
            if whole
            else f"{'(no test)':>14} {'':>9} {'':>5}"
        )
        print(f"{name:<20} {share:>15.3f} {n.max() / 1e6:>9.2f}M {beyond:>13.0f}x {np.median(floor):>10.2%} {tested}")


if __name__ == "__main__":
    main()
