"""The coordinate check: training changes activations by a width-independent amount under μP
(and a depth-independent one under CompleteP), and by an amount growing with width under SP.

The checks use the log-log slope of "RMS of change since init" against width
(widths 64..512, 6 Adam steps at lr 3e-3).  Measured (seeds 0-4): SP blocks
+1.6..+1.8, SP logits +0.75..+0.82; μP every layer -0.38..+0.01.  Breaking μP
(dropping the 1/m hidden LR, or the 1/m output multiplier) gives +0.6..+1.5,
and the two ablation tests below keep the check honest.
"""

import pytest
from conftest import ROOT

import ladder.nn.model as M
from ladder.pipeline import config
from ladder.tools.coordcheck import measure, run, slope

STEPS = 6
TRAIN = config.load(ROOT / "params.yaml").train.model_copy(update={"optimizer": "adamw"})  # shipped settings, AdamW
LAYERS = ["embedding", "first block", "last block", "logits"]


def mup_slopes(records):
    return {(n, k): slope(records, "μP", n, k) for n in LAYERS for k in (1, 3, STEPS)}


@pytest.fixture(scope="module")
def sp_and_mup():
    return measure(TRAIN, mup=False, steps=STEPS), measure(TRAIN, mup=True, steps=STEPS)


def test_mup_activation_updates_are_flat_across_widths(sp_and_mup):
    _, mup = sp_and_mup
    for (layer, step), s in mup_slopes(mup).items():
        assert -0.5 < s < 0.3, (layer, step, s)
    # plain RMS at the last step: widest vs narrowest within a factor of 2 for every layer
    for layer in LAYERS:
        rms = [r["rms"] for r in mup if r["layer"] == layer and r["step"] == STEPS]
        assert max(rms) / min(rms) < 2.0, (layer, rms)


def test_sp_activation_updates_grow_with_width(sp_and_mup):
    sp, mup = sp_and_mup
    for layer in ("first block", "last block"):
        assert slope(sp, "SP", layer, STEPS) > 1.0, layer
    assert slope(sp, "SP", "logits", STEPS) > 0.5
    for layer in ("first block", "last block", "logits"):
        assert slope(sp, "SP", layer, STEPS) > slope(mup, "μP", layer, STEPS) + 0.7, layer


def test_check_fails_without_mup_hidden_lr_scaling(monkeypatch):
    original = M.GPT.param_groups

    def unscaled(self, weight_decay, optimizer="adamw"):
        groups = original(self, weight_decay, optimizer)
        for g in groups:
            g["lr_scale"] = 1.0
        return groups

    monkeypatch.setattr(M.GPT, "param_groups", unscaled)
    slopes = mup_slopes(measure(TRAIN, mup=True, steps=STEPS))
    assert max(slopes[("first block", STEPS)], slopes[("last block", STEPS)]) > 0.5


def test_check_fails_without_mup_output_multiplier(monkeypatch):
    original = M.GPT.__init__

    def init(self, config):
        original(self, config)
        m = config.width_mult  # undo the 1/m that forward applies before lm_head
        self.lm_head.register_forward_hook(lambda _mod, _inp, out: out * m)

    monkeypatch.setattr(M.GPT, "__init__", init)
    slopes = mup_slopes(measure(TRAIN, mup=True, steps=STEPS))
    assert slopes[("logits", STEPS)] > 0.4


DEPTHS = (2, 4, 8, 16)


def test_completep_keeps_updates_flat_across_depth_and_sp_does_not():
    """Measured (width 64, 6 AdamW steps, lr 3e-3): the change of the last block's output grows with
    depth at slope +0.74 without a depth rule and is flat (-0.08) with CompleteP; logits +0.11 / -0.02."""
    sp = measure(TRAIN, mup=False, depths=DEPTHS, width=64, steps=STEPS)
    cp = measure(TRAIN, mup=True, depths=DEPTHS, width=64, steps=STEPS)
    assert slope(sp, "SP", "last block", STEPS, axis="depth") > 0.5
    for layer in ("last block", "logits"):
        assert abs(slope(cp, "μP + CompleteP", layer, STEPS, axis="depth")) < 0.3, layer


def test_mup_transfers_muon_updates_across_width():
    """Muon under μP (lr x 1/sqrt(m)): measured block slopes +0.02..+0.04; without μP +0.73..+0.93."""
    muon = TRAIN.model_copy(update={"optimizer": "muon"})
    mup, sp = measure(muon, mup=True, steps=STEPS), measure(muon, mup=False, steps=STEPS)
    for layer in ("first block", "last block"):
        assert abs(slope(mup, "μP", layer, STEPS)) < 0.3, layer
        assert slope(sp, "SP", layer, STEPS) > 0.5, layer


def test_run_writes_plot_and_csv(tmp_path):
    records = run(TRAIN, tmp_path / "cc.png", widths=(64, 128), steps=2, n_layer=1, seq_len=8, batch_size=2)
    assert {r["param"] for r in records} == {"SP", "μP"}
    assert (tmp_path / "cc.png").stat().st_size > 10_000 and (tmp_path / "cc.csv").exists()
    records = run(TRAIN, tmp_path / "depth.png", steps=2, depths=(1, 2), width=32, seq_len=8, batch_size=2)
    assert {r["param"] for r in records} == {"SP", "μP + CompleteP"} and {r["depth"] for r in records} == {1, 2}
    assert (tmp_path / "depth.png").stat().st_size > 10_000
