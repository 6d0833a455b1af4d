"""Two laws compared: does a change's effect at the rungs survive at the sizes?

A variant and the baseline each have a law per budget (analysis/scaling.py) fitted to the same rung shapes,
budgets and seed, so the rungs pair up: the same initial draw and data order, one difference in the
params. Their difference at a size is read off the two laws, log L_variant - log L_baseline, with an
interval from three parts, in log space:
- the laws' own: paired refits of the two (each on losses redrawn with one run's scatter, never less than
  the seed noise measured on the replicas);
- the form's, beyond the rungs: the difference's own extrapolation test (leave the largest shape out of
  both fits, predict the difference there, compare with the measured one), per e-fold of the distance,
  as the fit charges a prediction;
- nothing for one run's scatter: the question is the expected difference, not one pair of runs.

A verdict needs both: an interval that excludes zero, and a difference larger than the noise floor (the
90% half-width of one pair's difference from seed noise alone: smaller effects are within noise however
sure the laws are of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from ladder.analysis import scaling


def seed_noise(groups: list[list[float]]) -> tuple[float, int]:
    """Pooled standard deviation of log loss across seeds, over groups of runs that differ only in seed;
    (sd, degrees of freedom)."""
    squares, dof = 0.0, 0
    for losses in groups:
        logs = np.log(np.asarray(losses, dtype=float))
        squares += float(((logs - logs.mean()) ** 2).sum())
        dof += len(logs) - 1
    return (float(np.sqrt(squares / dof)) if dof else 0.0), dof


def floor(sd: float, level: float) -> float:
    """The `level` half-width of one pair's log difference, seed noise alone (two independent runs)."""
    return float(norm.ppf(0.5 + level / 2) * np.sqrt(2) * sd)


def laws(rows: list[dict], samples: int, delta: float, noise: float) -> list[scaling.Budget]:
    """One arm's law per budget, refitted with one run's scatter taken at least as the seed noise."""
    out = []
    for d in sorted({r["D"] for r in rows}):
        at = [r for r in rows if r["D"] == d]
        n, loss = [r["N"] for r in at], [r["val_loss"] for r in at]
        sigma = max(scaling.scatter(n, loss, scaling.fit(n, loss, delta)), noise)
        out.append(scaling.build(d, n, loss, samples, delta, sigma))
    return out


def _log_values(budgets: list[scaling.Budget], n: float, d: float) -> tuple[float, np.ndarray]:
    """An arm's central log loss at (N, D) and its refits' (R,)."""
    budgets = sorted(budgets, key=lambda b: b.tokens)
    value, _ = scaling.along_d(budgets, d, [[b.law.loss(n)] for b in budgets])
    refits, _ = scaling.along_d(budgets, d, np.array([[law.loss(n) for law in b.refits] for b in budgets]))
    return float(np.log(value[0])), np.log(refits)


@dataclass(frozen=True)
class Difference:
    value: float  # log L_variant - log L_baseline: about the relative difference
    low: float
    high: float
    beyond_n: float
    beyond_d: float
    draws: np.ndarray  # the interval's draws, for the trend


def difference(
    base: list[scaling.Budget], variant: list[scaling.Budget], n: float, d: float, level: float, per_efold: dict
) -> Difference:
    vb, rb = _log_values(base, n, d)
    vv, rv = _log_values(variant, n, d)
    k = min(len(rb), len(rv))
    _, beyond_d = scaling.along_d(sorted(base, key=lambda b: b.tokens), d, [[1.0] for _ in base])
    beyond_n = float(max(1.0, n / max(b.n_max for b in base + variant)))
    form = np.hypot((per_efold.get("N") or 0.0) * np.log(beyond_n), (per_efold.get("D") or 0.0) * np.log(beyond_d))
    rng = np.random.default_rng(0)
    draws = ((rv[:k] - rb[:k])[:, None] + rng.normal(0, form, (k, scaling.DRAWS))).ravel()
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return Difference(vv - vb, float(lo), float(hi), beyond_n, float(beyond_d), draws)


def extrapolation_test(
    base_rows: list[dict], variant_rows: list[dict], samples: int, delta: float, noise: float
) -> dict:
    """The difference's own test: at each budget with 5 shapes or more, leave the largest shape out of both
    arms, refit, predict the difference there and compare with the measured one. Its log error per e-fold
    of the distance (RMS over budgets) widens every difference beyond the rungs."""
    cases, errors = [], []
    for d in sorted({r["D"] for r in base_rows}):
        b = sorted((r for r in base_rows if r["D"] == d), key=lambda r: r["N"])
        v = sorted((r for r in variant_rows if r["D"] == d), key=lambda r: r["N"])
        if len(b) < 5:
            continue
        fitted = [laws(b[:-1], samples, delta, noise), laws(v[:-1], samples, delta, noise)]
        predicted = difference(*fitted, b[-1]["N"], d, 0.9, {})
        measured = float(np.log(v[-1]["val_loss"] / b[-1]["val_loss"]))
        factor = b[-1]["N"] / b[-2]["N"]
        cases.append(
            {
                "left_out": b[-1]["run"],
                "factor": round(factor, 3),
                "predicted": round(predicted.value, 5),
                "measured": round(measured, 5),
            }
        )
        errors.append(((measured - predicted.value) / np.log(factor)) ** 2)
    return {"cases": cases, "per_efold": {"N": round(float(np.sqrt(np.mean(errors))), 6) if errors else None}}


def verdict(diff: Difference, noise_floor: float) -> str:
    if diff.high < 0 and diff.value < -noise_floor:
        return "helps"
    if diff.low > 0 and diff.value > noise_floor:
        return "hurts"
    return "within noise"


def trend(at_rungs: Difference, at_size: Difference, noise_floor: float, level: float) -> str:
    """Whether the effect grows, holds or shrinks from the rungs to the size: the change of |difference|,
    outside the noise floor and in at least `level` of the paired draws."""
    k = min(len(at_rungs.draws), len(at_size.draws))
    change = np.abs(at_size.draws[:k]) - np.abs(at_rungs.draws[:k])
    central = abs(at_size.value) - abs(at_rungs.value)
    if central > noise_floor and (change > 0).mean() >= level:
        return "grows"
    if central < -noise_floor and (change < 0).mean() >= level:
        return "shrinks"
    return "holds"


def crossing(
    base: list[scaling.Budget], variant: list[scaling.Budget], n_lo: float, n_hi: float, d: float
) -> float | None:
    """The N between n_lo and n_hi where the central difference changes sign at D, if it does."""
    grid = np.geomspace(n_lo, n_hi, 200)
    values = np.array([_log_values(variant, n, d)[0] - _log_values(base, n, d)[0] for n in grid])
    flips = np.nonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0)[0]
    if not len(flips):
        return None
    i = int(flips[0])
    w = values[i] / (values[i] - values[i + 1])  # linear in log N between the grid points
    return float(np.exp(np.log(grid[i]) + w * (np.log(grid[i + 1]) - np.log(grid[i]))))
