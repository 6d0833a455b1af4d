"""The difference of two laws (analysis/ab.py) on losses drawn from laws whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from ladder.analysis import ab, scaling

N = np.array([2e4, 6e4, 1.5e5, 3e5, 8e5])
D = 1_000_000


def rows(law: scaling.Law, noise: float = 0.0, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    loss = law.loss(N) * np.exp(rng.normal(0, noise, len(N)))
    return [{"run": f"r{i}", "N": float(n), "D": D, "val_loss": float(x)} for i, (n, x) in enumerate(zip(N, loss))]


def laws(law: scaling.Law, noise: float = 0.0, seed: int = 0):
    return ab.laws(rows(law, noise, seed), samples=40, delta=1e-3, noise=max(noise, 1e-3))


BASE = scaling.Law(E=3.0, A=40.0, alpha=0.3)


def test_seed_noise_pools_the_spread_of_each_group():
    sd, dof = ab.seed_noise([[1.0, np.e**0.02], [2.0, 2.0 * np.e**-0.02]])
    assert dof == 2 and sd == pytest.approx(np.sqrt(2 * 0.01**2 * 2 / 2), rel=1e-9)
    assert ab.seed_noise([[4.0]]) == (0.0, 0)  # one seed: no spread to measure
    assert ab.floor(0.01, 0.9) == pytest.approx(1.6449 * np.sqrt(2) * 0.01, rel=1e-4)


def test_the_same_law_is_within_noise_everywhere():
    base, same = laws(BASE), laws(BASE)
    for n in (N[0], N[-1], 1e8):
        d = ab.difference(base, same, n, D, 0.9, {"N": 0.01})
        assert d.value == pytest.approx(0, abs=1e-9) and d.low <= 0 <= d.high
        assert ab.verdict(d, ab.floor(1e-3, 0.9)) == "within noise"


def test_a_uniformly_worse_variant_hurts_and_its_effect_holds():
    worse = scaling.Law(E=BASE.E * 1.03, A=BASE.A * 1.03, alpha=BASE.alpha)  # 3% worse at every N
    base, var = laws(BASE, 0.002, 1), laws(worse, 0.002, 1)  # the same noise draw: paired runs
    at_rungs = ab.difference(base, var, N[0], D, 0.9, {})
    at_size = ab.difference(base, var, N[-1] * 3, D, 0.9, {})
    assert at_size.value == pytest.approx(np.log(1.03), abs=2e-3)
    assert at_size.low > 0 and ab.verdict(at_size, ab.floor(0.002, 0.9)) == "hurts"
    assert ab.trend(at_rungs, at_size, ab.floor(0.002, 0.9), 0.9) == "holds"
    assert ab.crossing(base, var, N[0], N[-1] * 3, D) is None


def test_an_effect_that_reverses_with_n_flips_sign_where_the_laws_cross():
    """Better small, worse large: the variant's floor E is lower, its A higher. The central difference
    changes sign where 0.1 = 8 / N^0.3, N = 80^(1/0.3)."""
    var = scaling.Law(E=BASE.E - 0.1, A=BASE.A + 8.0, alpha=BASE.alpha)
    base, v = laws(BASE), laws(var)
    at = ab.crossing(base, v, N[0], 1e8, D)
    assert at == pytest.approx(80 ** (1 / 0.3), rel=0.03)
    small, large = ab.difference(base, v, N[0], D, 0.9, {}), ab.difference(base, v, 1e9, D, 0.9, {})
    assert small.value > 0 > large.value  # hurts at the rungs, helps far beyond
    assert ab.verdict(large, ab.floor(1e-3, 0.9)) == "helps"


def test_the_form_error_widens_the_interval_beyond_the_rungs_only():
    base, var = laws(BASE), laws(scaling.Law(E=3.05, A=40.0, alpha=0.3))
    inside = ab.difference(base, var, N[-1], D, 0.9, {"N": 0.05})
    far = ab.difference(base, var, N[-1] * 100, D, 0.9, {"N": 0.05})
    assert inside.beyond_n == 1.0 and far.beyond_n == pytest.approx(100)
    assert (far.high - far.low) > 5 * (inside.high - inside.low)


def test_the_extrapolation_test_predicts_the_left_out_difference():
    """Laws that are exact: the refit without the largest shape predicts its difference almost exactly."""
    var = scaling.Law(E=3.0, A=44.0, alpha=0.3)
    test = ab.extrapolation_test(rows(BASE), rows(var), samples=20, delta=1e-3, noise=1e-3)
    (case,) = test["cases"]
    assert case["left_out"] == "r4" and case["factor"] == pytest.approx(N[-1] / N[-2], rel=1e-3)
    assert case["predicted"] == pytest.approx(case["measured"], abs=1e-3)
    assert test["per_efold"]["N"] < 1e-3
