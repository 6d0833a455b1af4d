"""The scaling ladder's law, and what it may claim.

At each token budget D the rungs trained, the final val loss follows L_D(N) = E_D + A_D / N^alpha_D
over the rungs' non-embedding sizes N: one law per budget, not one L(N, D) = E + A/N^alpha + B/D^beta
for all of them. On an H100 (docs/scaling.md) N and D did not act separately in the regime a ladder
trains in (a few hundred optimizer steps): between 9.4M and 30M tokens the loss's slope in log N grew
fourfold, so an additive law fitted across budgets misplaced every size by 7-15%. A law per budget
measures N's effect where it is used; between budgets a prediction moves along D by interpolating
log L in log D, and beyond them by extending the nearest two budgets' slope, which the extrapolation
test (below) checks when there are three budgets or more.

Each budget's law minimises the Huber loss of log L_hat - log L, as Chinchilla's approach 3 does
(Hoffmann et al. 2022, appendix D.2), but by variable projection: for a given alpha, E and A follow
from a reweighted least-squares solve, so the search is over alpha alone. Its uncertainty has three
parts, added in log space:
- the law's own: refits on the rungs' losses redrawn about the law with one run's scatter (a
  parametric bootstrap; with 4-6 rungs a budget, resampling rungs would mostly refit duplicates);
- one run's scatter about the law (seed, data order): the residuals' RMS, corrected for 3 fitted
  parameters, at least MIN_SCATTER;
- the law's form, which no refit can show: leave the largest rung out, fit the rest, predict it. The
  error per e-fold of extrapolation (|log error| / log factor) is assumed to hold further out, so a
  size 60x beyond the rungs carries ln 60 times that error. It is a stated assumption, not a
  measurement, beyond the factor the test reached; predictions say when they rely on it.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import numpy as np
from scipy.optimize import minimize_scalar

MIN_SCATTER = 1e-3  # one run's log scatter is never taken below this: 2-3 degrees of freedom can show ~0
LOG_E_BOUNDS = (-5, 5)
ALPHA_BOUNDS = (1e-3, 3)  # at alpha 0, A and E would be one constant
DRAWS = 40  # noise draws per refit, for an interval's percentiles


@dataclass(frozen=True)
class Law:
    """One budget's law in N."""

    E: float
    A: float
    alpha: float

    def loss(self, n):
        return self.E + self.A / np.power(np.asarray(n, dtype=float), self.alpha)


def _profile(alphas, n, loss, delta):
    """For each alpha, the best E and A and the Huber objective: with alpha fixed the law is linear in
    E and A, so they come from a least-squares solve (variable projection), reweighted a few times
    for the Huber loss (IRLS). Relative residuals stand in for log ones, which they match to within
    half their square (5e-5 at 1%); the objective itself is on log residuals.
    Shapes: alphas (G,), n and loss (k,); returns three (G,) arrays."""
    x = np.power(n[None, :], -alphas[:, None])  # (G, k)
    w = np.ones_like(x) / loss**2  # least squares in relative error
    for _ in range(6):
        sw, sx, sy = w.sum(1), (w * x).sum(1), (w * loss).sum(1)
        sxx, sxy = (w * x * x).sum(1), (w * x * loss).sum(1)
        det = sw * sxx - sx**2
        a = (sw * sxy - sx * sy) / det
        e = (sy - a * sx) / sw
        a = np.maximum(a, 0.0)  # a loss that rises with N is no law: flat at best
        e = np.where(a > 0, e, sy / sw)
        e = np.clip(e, *np.exp(LOG_E_BOUNDS))
        r = np.log((e[:, None] + a[:, None] * x) / loss)
        w = np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-12)) / loss**2
    huber = np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)).sum(1)
    return e, a, huber


def fit(n, loss, delta: float = 1e-3) -> Law:
    """The law minimising the Huber loss of log residuals: alpha by a grid over ALPHA_BOUNDS then a bounded
    1-D search around the best point; E and A solved for each alpha (_profile)."""
    n, loss = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    grid = np.linspace(*ALPHA_BOUNDS, 601)
    e, a, obj = _profile(grid, n, loss, delta)
    i = int(np.argmin(obj))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    best = minimize_scalar(
        lambda al: _profile(np.array([al]), n, loss, delta)[2][0],
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-7},
    )
    alpha = float(best.x) if best.fun <= obj[i] else float(grid[i])
    e, a, _ = _profile(np.array([alpha]), n, loss, delta)
    return Law(E=float(e[0]), A=float(a[0]), alpha=alpha)


def scatter(n, loss, law: Law) -> float:
    """One run's log scatter about the law: the residuals' RMS over the degrees of freedom left."""
    r = np.log(np.asarray(loss, dtype=float) / law.loss(n))
    return float(max(np.sqrt((r**2).sum() / max(len(r) - 3, 1)), MIN_SCATTER))


def bootstrap(n, law: Law, sigma: float, samples: int, delta: float = 1e-3, seed: int = 0) -> list[Law]:
    """Refits on losses redrawn as the law's values times one run's scatter (parametric bootstrap)."""
    rng = np.random.default_rng(seed)
    n = np.asarray(n, dtype=float)
    return [fit(n, law.loss(n) * np.exp(rng.normal(0, sigma, len(n))), delta) for _ in range(samples)]


@dataclass(frozen=True)
class Budget:
    """A budget's law with what its interval needs."""

    tokens: int
    law: Law
    refits: list[Law]
    sigma: float  # one run's log scatter
    n_max: float  # the largest N fitted


def build(tokens: int, n, loss, samples: int, delta: float, sigma: float | None = None, seed: int = 0) -> Budget:
    """A budget's law, its scatter (unless given: a subset's is better taken from the whole) and refits."""
    law = fit(n, loss, delta)
    sigma = scatter(n, loss, law) if sigma is None else sigma
    return Budget(tokens, law, bootstrap(n, law, sigma, samples, delta, seed), sigma, float(np.max(n)))


def value(budgets: list[Budget], n, d: float) -> np.ndarray:
    """The laws' central value at (N, D), without an interval (for curves and frontiers)."""
    budgets = sorted(budgets, key=lambda b: b.tokens)
    return along_d(budgets, d, [np.atleast_1d(b.law.loss(n)) for b in budgets])[0]


def along_d(budgets: list[Budget], d: float, values) -> tuple[np.ndarray, float]:
    """Values at D from the budgets' values (rows: budgets), log-linear in log D between the nearest two,
    and extended by their slope beyond; the second result is how far beyond the budgets D lies (>= 1)."""
    values = np.log(np.asarray(values, dtype=float))
    d_all = np.log([b.tokens for b in budgets])
    if len(budgets) == 1:
        return np.exp(values[0]), float(np.exp(abs(np.log(d) - d_all[0])))
    i = int(np.clip(np.searchsorted(d_all, np.log(d)) - 1, 0, len(budgets) - 2))
    w = (np.log(d) - d_all[i]) / (d_all[i + 1] - d_all[i])
    beyond = float(np.exp(max(d_all[0] - np.log(d), np.log(d) - d_all[-1], 0.0)))
    return np.exp(values[i] + w * (values[i + 1] - values[i])), beyond


@dataclass(frozen=True)
class Prediction:
    value: float
    low: float
    high: float
    beyond_n: float  # N over the largest fitted N (1 inside the rungs)
    beyond_d: float  # how far D lies outside the budgets (1 inside)
    model_form: float  # the log error the form adds at this distance (a standard deviation)
    sd: float  # the whole log standard deviation: refits, one run's scatter and the form


def predict(budgets: list[Budget], n: float, d: float, level: float, per_efold: dict, seed: int = 0) -> Prediction:
    """One run's final val loss at (N, D), with its `level` interval: the refits' values, each times
    one run's scatter and the form's error for the distance beyond the rungs (module docstring).
    `per_efold` is the extrapolation test's log error per e-fold, {"N": ..., "D": ...} (None: untested)."""
    budgets = sorted(budgets, key=lambda b: b.tokens)
    value, beyond_d = along_d(budgets, d, [[b.law.loss(n)] for b in budgets])
    refits = np.array([[law.loss(n) for law in b.refits] for b in budgets])  # (budgets, refits)
    spread, _ = along_d(budgets, d, refits)
    beyond_n = float(max(1.0, n / max(b.n_max for b in budgets)))
    form = np.hypot((per_efold.get("N") or 0.0) * np.log(beyond_n), (per_efold.get("D") or 0.0) * np.log(beyond_d))
    sigma = np.hypot(max(b.sigma for b in budgets), form)
    rng = np.random.default_rng(seed)
    draws = spread[:, None] * np.exp(rng.normal(0, sigma, (len(spread), DRAWS)))
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    sd = float(np.sqrt(np.var(np.log(spread)) + sigma**2))
    return Prediction(float(value[0]), float(lo), float(hi), beyond_n, beyond_d, float(form), sd)


def budgets_of(fit: dict) -> list[Budget]:
    """The budgets back from fit.json (stages fit and predict, `ladder plan`)."""
    return [
        Budget(b["D"], Law(**b["params"]), [from_list(x) for x in b["refits"]], b["scatter"], b["n_max"])
        for b in fit["budgets"]
    ]


def warnings(p: Prediction, extrapolation: dict, epochs: float) -> list[str]:
    """What a prediction should say about itself: distances beyond what the extrapolation test checked,
    and data repeats the rungs never saw."""
    out = []
    tested = extrapolation["supported"]
    if p.beyond_n > tested["N"] * 1.01:
        out.append(
            f"N is {p.beyond_n:.3g}x the largest rung, beyond the {tested['N']:g}x the extrapolation test "
            f"checked: the interval assumes the form's error keeps growing as measured, per e-fold"
        )
    if p.beyond_d > max(tested["D"], 1.0) * 1.01:
        out.append(
            f"D lies {p.beyond_d:.3g}x outside the rungs' budgets, beyond the {tested['D']:g}x the "
            "extrapolation test checked"
            + (
                ""
                if extrapolation["per_efold"]["D"] is not None
                else ": no D test ran (it needs 3 budgets), so the interval has no "
                "term for it; add this budget to scaling.budgets"
            )
        )
    if epochs > 1:
        out.append(
            f"trains {epochs:.2f} epochs of the train split; the rungs saw each token once, so the "
            "prediction ignores repeats, which cost loss (Muennighoff et al. 2023): expect it optimistic"
        )
    return out


def as_list(law: Law) -> list[float]:
    return list(astuple(law))


def from_list(values) -> Law:
    return Law(*map(float, values))


def extrapolation_test(rungs: list[dict], whole: dict[int, Budget], samples: int, delta: float, level: float) -> dict:
    """Predict what the fit did not see, from what it did. Along N: at each budget with 5 shapes or more,
        leave the largest out, refit the rest, predict it. Along D: with 3 budgets or more, leave the largest
        budget out and predict every shape there from the others. `rungs`: dicts with rung, N, D, val_loss;
    `whole`: each budget fitted to all its rungs.

        Each prediction's interval here is the statistical one (refits and scatter, the scatter taken from
        the whole budget), so `inside_interval` says whether statistics alone covered the error. The whole
        log error is charged to the form, noise included: per e-fold of the factor, its RMS over the cases
        is `per_efold`, which widens every prediction beyond the rungs. (Charging only what the statistics
        leave unexplained covered the truth less often in simulation: bench/calibration.py.)"""
    by_d: dict[int, list[dict]] = {}
    for r in rungs:
        by_d.setdefault(r["D"], []).append(r)
    cases = []  # (left-out rung, direction, budgets fitted)
    for d, rows in by_d.items():
        if len(rows) >= 5:
            rows = sorted(rows, key=lambda r: r["N"])[:-1]
            cases.append(
                (
                    max(by_d[d], key=lambda r: r["N"]),
                    "N",
                    [build(d, [r["N"] for r in rows], [r["val_loss"] for r in rows], samples, delta, whole[d].sigma)],
                )
            )
    if len(by_d) >= 3:
        cases += [(r, "D", [b for d, b in whole.items() if d != max(by_d)]) for r in by_d[max(by_d)]]
    out = {
        "left_out": [],
        "along": [],
        "factors": [],
        "predicted": [],
        "actual": [],
        "errors": [],
        "sd": [],
        "inside_interval": [],
    }
    excess = {"N": [], "D": []}
    for r, along, fitted in cases:
        p = predict(fitted, r["N"], r["D"], level, {})
        factor = p.beyond_n if along == "N" else p.beyond_d
        error = r["val_loss"] / p.value - 1
        out["left_out"].append(r["rung"])
        out["along"].append(along)
        out["factors"].append(round(factor, 3))
        out["predicted"].append(round(p.value, 5))
        out["actual"].append(r["val_loss"])
        out["errors"].append(round(error, 5))
        out["sd"].append(round(p.sd, 5))
        out["inside_interval"].append(bool(p.low <= r["val_loss"] <= p.high))
        excess[along].append((np.log1p(error) / np.log(factor)) ** 2)
    out["max_abs_error"] = max(map(abs, out["errors"]), default=None)
    out["per_efold"] = {k: round(float(np.sqrt(np.mean(v))), 6) if v else None for k, v in excess.items()}
    out["supported"] = {
        k: max((f for f, a in zip(out["factors"], out["along"]) if a == k), default=1.0) for k in ("N", "D")
    }
    return out
