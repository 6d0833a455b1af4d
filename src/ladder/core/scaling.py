"""The scaling law L(N, D) = E + A / N^alpha + B / D^beta, fitted as Chinchilla's approach 3.

Hoffmann et al. (2022), appendix D.2: minimise the Huber loss (small delta, so a few bad runs do not
pull the fit) of log L̂ - log L over the runs, where log L̂ = logsumexp(a - alpha log N, b - beta
log D, e) with A = e^a, B = e^b, E = e^e, by L-BFGS-B from a grid of starting points, keeping the
best. Intervals come from refitting on rungs resampled with replacement (the bootstrap): a
prediction's interval is the spread of the refits' predictions at that N and D, each with the
scatter of one run about the law (the fitted runs' residuals) on top, since what is predicted is one
run's loss.

The compute-optimal frontier is the fit's minimum along C = 6 N D (N as the fit counts it):
N_opt = G (C/6)^(beta/(alpha+beta)) with G = (alpha A / (beta B))^(1/(alpha+beta)).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import astuple, dataclass

import numpy as np
from scipy.optimize import minimize

# Starting points (Chinchilla's grid, coarser): the law's exponents near 0.3 and its constants vary
# over orders of magnitude, so the grid spans them in log space.
GRID = {"a": (0.0, 5.0, 10.0, 15.0, 20.0), "b": (0.0, 5.0, 10.0, 15.0, 20.0), "e": (-1.0, 0.0, 1.0, 1.5),
        "alpha": (0.1, 0.4, 0.8), "beta": (0.1, 0.4, 0.8)}
BOUNDS = [(-20, 60), (-20, 60), (-5, 5), (0, 3), (0, 3)]  # a, b, e, alpha, beta


@dataclass(frozen=True)
class Law:
    E: float
    A: float
    alpha: float
    B: float
    beta: float

    def loss(self, n, d):
        return self.E + self.A / np.power(n, self.alpha) + self.B / np.power(d, self.beta)

    @property
    def has_optimum(self) -> bool:
        """Whether the law trades N against D at all: with an exponent at 0, more of that one never helps."""
        return min(self.alpha, self.beta) > 1e-3 and min(self.A, self.B) > 0

    def optimal(self, flops):
        """(N, D) minimising the loss at compute C = 6 N D (see has_optimum)."""
        a = self.beta / (self.alpha + self.beta)
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        n = g * np.power(np.asarray(flops, dtype=float) / 6, a)
        return n, np.asarray(flops, dtype=float) / (6 * n)


def _terms(theta, log_n, log_d):
    """The three log-terms of L̂, for one theta (5,) or a stack of them (k, 5): shape (k?, 3, runs)."""
    theta = np.asarray(theta, dtype=float)
    a, b, e, alpha, beta = (theta[..., i, None] for i in range(5))
    return np.stack([a - alpha * log_n, b - beta * log_d, e + 0 * log_n], axis=-2)


def _huber(r, delta):
    return np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))


def _objective(theta, log_n, log_d, log_l, delta):
    t = _terms(theta, log_n, log_d)
    top = t.max(axis=0)
    w = np.exp(t - top)  # softmax over the three terms, unnormalised
    total = w.sum(axis=0)
    r = top + np.log(total) - log_l
    dr = np.clip(r, -delta, delta)  # d huber / d r
    w = w / total * dr  # d r / d (each term) is its softmax weight
    grad = np.array([w[0].sum(), w[1].sum(), w[2].sum(), -(w[0] * log_n).sum(), -(w[1] * log_d).sum()])
    # in units of delta^2: L-BFGS-B's stopping rule is relative to max(|f|, 1), and the raw sum is ~1e-5
    return _huber(r, delta).sum() / delta**2, grad / delta**2


def _screen(log_n, log_d, log_l, delta, keep: int) -> list[np.ndarray]:
    """The `keep` grid points of lowest objective: the grid is scored at once, and only the best start
    an L-BFGS-B run (the full grid would cost a thousand runs per fit, for the same optimum)."""
    grid = np.array(list(itertools.product(*(GRID[k] for k in ("a", "b", "e", "alpha", "beta")))))
    t = _terms(grid, log_n, log_d)
    top = t.max(axis=1)
    r = top + np.log(np.exp(t - top[:, None]).sum(axis=1)) - log_l
    order = np.argsort(_huber(r, delta).sum(axis=1))
    return list(grid[order[:keep]])


def _theta(law: Law) -> np.ndarray:
    return np.array([np.log(law.A), np.log(law.B), np.log(law.E), law.alpha, law.beta])


def fit(n, d, loss, delta: float = 1e-3, starts: list | None = None) -> Law:
    """The law minimising the Huber loss of log residuals, best of L-BFGS-B runs from `starts`
    (default: the 24 best points of the grid)."""
    log_n, log_d, log_l = (np.log(np.asarray(x, dtype=float)) for x in (n, d, loss))
    if starts is None:
        starts = _screen(log_n, log_d, log_l, delta, keep=24)
    best = None
    for x0 in starts:
        r = minimize(_objective, x0, args=(log_n, log_d, log_l, delta), jac=True, method="L-BFGS-B", bounds=BOUNDS,
                     options={"ftol": 1e-12, "gtol": 1e-9, "maxiter": 1000})
        if best is None or r.fun < best.fun:
            best = r
    a, b, e, alpha, beta = best.x
    return Law(E=float(np.exp(e)), A=float(np.exp(a)), alpha=float(alpha), B=float(np.exp(b)), beta=float(beta))


def bootstrap(n, d, loss, law: Law, samples: int, delta: float = 1e-3, seed: int = 0) -> Iterator[Law]:
    """Refits on rungs drawn with replacement, each started from the full fit and its own best grid
    points; yielded one by one, so a caller can show progress."""
    rng = np.random.default_rng(seed)
    n, d, loss = (np.asarray(x, dtype=float) for x in (n, d, loss))
    for _ in range(samples):
        pick = rng.integers(0, len(n), len(n))
        logs = [np.log(x[pick]) for x in (n, d, loss)]
        yield fit(n[pick], d[pick], loss[pick], delta, [_theta(law), *_screen(*logs, delta, keep=2)])


def noise(n, d, loss, law: Law) -> list[float]:
    """The fitted runs' log residuals, scaled up for the law's 5 fitted parameters (sqrt(k / (k - 5))):
    the scatter a single new run shows about the law (its seed, its data order)."""
    r = np.log(np.asarray(loss, dtype=float) / law.loss(np.asarray(n, dtype=float), np.asarray(d, dtype=float)))
    return list(r * np.sqrt(len(r) / max(len(r) - 5, 1)))


def interval(laws: list[Law], n, d, level: float, residuals=(0.0,)) -> tuple[float, float]:
    """The central `level` share of the refits' predictions at (n, d), each times every residual in
    turn: an interval for one run's loss, not only for the law's."""
    values = np.outer([law.loss(n, d) for law in laws], np.exp(np.asarray(residuals, dtype=float))).ravel()
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def as_list(law: Law) -> list[float]:
    return list(astuple(law))


def from_list(values) -> Law:
    return Law(*map(float, values))
