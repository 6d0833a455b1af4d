"""The scaling-law fit on losses made from known laws: it must give the law back, say how sure it is,
widen that by what its extrapolation test measures, and say when a prediction goes beyond the test."""

from __future__ import annotations

import numpy as np
import pytest

from ladder.analysis import scaling
from ladder.pipeline.config import ConfigError, load

# the law measured at 30M tokens on an H100 (docs/scaling.md), on rungs like the GPU ladder's
TRUE = scaling.Law(E=4.4656, A=11.8246, alpha=0.2018)
N = np.array([1.07e5, 3.32e5, 5.66e5, 1.77e6, 4.82e6])
D = 30_015_488


def rungs(loss, d=D, n=N):
    return [dict(rung=f"r{i}-{d}", N=x, D=d, val_loss=y) for i, (x, y) in enumerate(zip(n, loss))]


def test_the_fit_recovers_the_law_from_exact_losses():
    law = scaling.fit(N, TRUE.loss(N))
    for name in ("E", "A", "alpha"):
        assert getattr(law, name) == pytest.approx(getattr(TRUE, name), rel=2e-3), name


def test_with_noise_the_true_loss_60x_beyond_the_rungs_is_inside_the_interval():
    noisy = TRUE.loss(N) * np.exp(np.random.default_rng(0).normal(0, 0.001, len(N)))  # about a seed's spread
    budget = scaling.build(D, N, noisy, samples=40, delta=1e-3)
    test = scaling.extrapolation_test(rungs(noisy), {D: budget}, 40, 1e-3, 0.9)
    assert test["left_out"] == [f"r4-{D}"] and test["along"] == ["N"]
    assert test["factors"][0] == pytest.approx(2.72, 0.01)
    n = 3.036e8  # medium
    p = scaling.predict([budget], n, D, 0.9, test["per_efold"])
    assert p.low < TRUE.loss(n) < p.high and p.low <= p.value <= p.high
    assert abs(p.value / TRUE.loss(n) - 1) < 0.02
    assert (p.high - p.low) / p.value < 0.08  # an interval that says something
    assert p.beyond_n == pytest.approx(n / N.max()) and p.beyond_d == 1.0


def test_a_bad_run_barely_moves_the_fit():
    """The Huber loss's point: one run far off (a diverged rung, a bad node) is not fitted like the rest."""
    n = np.geomspace(1e5, 5e6, 7)
    bad = TRUE.loss(n)
    bad[3] *= 1.2
    assert scaling.fit(n, bad).loss(3e8) == pytest.approx(TRUE.loss(3e8), rel=0.01)


def bent(n):
    """A loss whose exponent drifts with N: a form the law does not have."""
    return 4.4 + 11.8 * np.power(n, -(0.2 + 0.05 * np.log(n / 1e5)))


def test_a_wrong_form_shows_in_the_extrapolation_test_and_widens_the_interval():
    budget = scaling.build(D, N, bent(N), samples=40, delta=1e-3)
    test = scaling.extrapolation_test(rungs(bent(N)), {D: budget}, 40, 1e-3, 0.9)
    assert test["per_efold"]["N"] > 0.002 and test["max_abs_error"] > 0.002  # about 0.29% at 2.7x
    n = 8.5e7
    plain = scaling.predict([budget], n, D, 0.9, {})
    widened = scaling.predict([budget], n, D, 0.9, test["per_efold"])
    assert not plain.low < bent(n) < plain.high  # the refits alone are sure of the wrong answer
    assert widened.low < bent(n) < widened.high and widened.model_form > 0


def test_between_budgets_a_prediction_interpolates_in_log_d_and_the_d_test_runs():
    budgets_d = [7_503_872, 15_007_744, 30_015_488]
    # N's effect grows with D (as measured), and the loss still falls with D at every N
    law_at = {d: scaling.Law(E=4.0 + 5000 * d**-0.5, A=11.8 * (d / D) ** 0.5, alpha=0.2) for d in budgets_d}
    table = [r for d in budgets_d for r in rungs(law_at[d].loss(N), d)]
    whole = {d: scaling.build(d, N, law_at[d].loss(N), 20, 1e-3) for d in budgets_d}
    test = scaling.extrapolation_test(table, whole, 20, 1e-3, 0.9)
    assert test["along"].count("D") == len(N) and test["supported"]["D"] == pytest.approx(2.0, 0.01)
    assert test["per_efold"]["D"] > 0  # log-linear in log D misses this law's bend, and the test says so
    mid = scaling.predict(list(whole.values()), 1e6, 21e6, 0.9, test["per_efold"])
    assert law_at[15_007_744].loss(1e6) > mid.value > law_at[D].loss(1e6) and mid.beyond_d == 1.0
    assert mid.model_form == 0.0  # between budgets: no extrapolation to charge
    far = scaling.predict(list(whole.values()), 1e6, 4 * D, 0.9, test["per_efold"])
    assert far.beyond_d == pytest.approx(4.0) and far.model_form == pytest.approx(test["per_efold"]["D"] * np.log(4))


def test_a_prediction_warns_beyond_the_test_and_for_repeated_data():
    test = {"supported": {"N": 2.7, "D": 1.0}, "per_efold": {"N": 0.002, "D": None}}
    budget = scaling.build(D, N, TRUE.loss(N), 20, 1e-3)
    inside = scaling.predict([budget], 2e6, D, 0.9, test["per_efold"])
    assert scaling.warnings(inside, test, 0.9) == []
    far = scaling.predict([budget], 3e8, 2 * D, 0.9, test["per_efold"])
    said = scaling.warnings(far, test, 1.4)
    assert len(said) == 3 and "62.2x the largest rung" in said[0]
    assert "no D test ran" in said[1] and "1.40 epochs" in said[2]


@pytest.mark.parametrize(
    "change, key",
    [
        (dict(holdout=["w99-d1-5"]), "scaling: holdout: 'w99-d1-5' is not a rung"),
        (dict(budgets=[]), "scaling: budgets: must list at least 1 value"),
        (dict(shapes=["w32-d2", "w64-d2", "w96-d2"]), "scaling: shapes: must list at least 4 values"),
        (
            dict(shapes=["w32-d1", "w64-d2", "w96-d2", "w128-d3"], budgets=[1000], holdout=["w32-d1-1000"]),
            "holdout: leaves 3 rungs to fit at budget 1000",
        ),
        (dict(shapes=["w30-d2", "w64-d2", "w96-d2", "w128-d3"]), "scaling: shapes: width of w30-d2 must be a multiple"),
        (dict(train={"tokens": 5}), "scaling.train: sets a budget"),
        (dict(train={"micro_batch": 7}), "scaling.train.batch_tokens"),
        (dict(budget="tokens"), "scaling.budget: unknown key"),
    ],
)
def test_a_bad_scaling_block_names_its_key(tmp_path, change, key):
    import yaml

    params = yaml.safe_load(open("params.yaml"))
    params["scaling"].update(change)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError) as e:
        load(tmp_path / "params.yaml")
    assert key in str(e.value), str(e.value)


def test_a_rung_trains_its_shape_at_its_budget_with_the_shipped_recipe():
    params = load("params.yaml")
    name = params.scaling.rungs()[-1]
    rung = params.rung(name)
    t = rung.train_for(name)
    shape, budget = name.rsplit("-", 1)
    assert f"w{rung.sizes[name].n_embd}-d{rung.sizes[name].n_layer}" == shape
    assert (t.tokens, t.flops) == (int(budget), None)
    assert (rung.lr, rung.seed, t.optimizer, t.mup) == (
        params.lr,
        params.seed,
        params.train.optimizer,
        params.train.mup,
    )
    tiny = params.train_for("tiny")  # the regime the sizes train in: the same batch and budget
    assert (t.batch_tokens, t.seq_len, t.schedule, t.tokens) == (
        tiny.batch_tokens,
        tiny.seq_len,
        tiny.schedule,
        tiny.tokens,
    )
