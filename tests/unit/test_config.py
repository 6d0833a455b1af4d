"""params.yaml is typed and validated: a bad key or value is one line naming the key, and exit 1."""

from __future__ import annotations

import difflib

import pytest
from conftest import ROOT, edit_params, sh

from ladder.pipeline import config


def test_shipped_params_are_valid():
    params = config.load(ROOT / "params.yaml")
    assert {"tiny", "mini", "small", "medium"} <= set(params.sizes)
    assert params.size("small").n_layer == 12 and params.size("small").n_embd == 768
    assert params.size("medium").n_layer == 24 and params.size("medium").n_embd == 1024
    assert set(params.pipeline.sizes) <= {"tiny", "mini"}  # a plain run never starts 124M on a laptop


def test_a_sizes_own_lr_is_its_runs_alone():
    raw = config.load(ROOT / "params.yaml").model_dump()
    raw["sizes"]["tiny"]["train"]["lr"] = 0.006
    params = config.Params.model_validate(raw)
    assert params.derived("train", "tiny").lr == 0.006 and "lr" not in params.train_for("tiny").model_dump()
    assert params.derived("train", "mini").lr == params.lr == 0.003
    assert {params.derived("rung", r).lr for r in params.scaling.rungs()} == {0.003}  # the fit's recipe


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda p: p["train"].update(bogus=1), "train.bogus: unknown key"),
        (lambda p: p.update(lr=-1), "lr: Input should be greater than 0"),
        (lambda p: p["tokenizer"].update(vocab_size=100), "tokenizer.vocab_size"),
        (lambda p: p["sizes"]["tiny"].update(n_head=3), "sizes.tiny: n_embd (128) must be divisible by n_head (3)"),
        (lambda p: p["sizes"]["mini"]["train"].update(micro_batch=0), "sizes.mini.train.micro_batch"),
        (lambda p: p["pipeline"].update(sizes={"tiny": "base", "huge": "base"}), "pipeline.sizes names 'huge'"),
        (lambda p: p["pipeline"].update(sizes=["tiny", "mini"]), "pipeline.sizes: must map each size to its plan"),
        (
            lambda p: p["pipeline"]["sizes"].update(mini="sorted"),
            "pipeline.sizes.mini: Input should be 'base' or 'scored'",
        ),
        (lambda p: p["pipeline"]["sizes"].update(tiny="scored"), "pipeline.sizes.tiny: the scorer"),
        (lambda p: p["curriculum"].update(scorer="small"), "curriculum.scorer: 'small' must be one of pipeline.sizes"),
        (lambda p: p["curriculum"].update(direction="random"), "curriculum.direction"),
        (lambda p: p["subset"].update(fraction=0), "subset.fraction"),
        (lambda p: p["sweep"].update(lrs=[0.001, 0.003]), "sweep: lrs: must step by 2x"),
        (lambda p: p["sweep"].update(shapes=["128x4"]), "sweep.shapes: '128x4' is not w<width>-d<depth>"),
        (
            lambda p: p["sweep"].update(shapes=["w48-d4"]),
            "sweep: shapes: width of w48-d4 must be a multiple of head_dim",
        ),
        (lambda p: p["sweep"]["train"].update(batch_tokens=1000), "sweep.train.batch_tokens"),
        (
            lambda p: p["train"].update(optimizer="muon", parallel="fsdp", devices=2, batch_tokens=32768),
            "train: optimizer: muon orthogonalizes whole matrices",
        ),
    ],
)
def test_bad_params_fail_with_one_line_naming_the_key(fresh, change, key):
    edit_params(fresh, lambda p: p.update(config.load(ROOT / "params.yaml").model_dump(mode="json")))
    edit_params(fresh, change)
    p = sh("ladder download", fresh, check=False)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "params.yaml" in lines[0], p.stderr
    assert not (fresh / "data/raw").exists()


def test_unknown_size_on_the_command_line(fresh):
    p = sh("ladder train --size huge", fresh, check=False)
    assert p.returncode == 1 and "sizes.huge: no such size" in p.stderr
    p = sh("ladder train --cell w128-d4-sp-0.005-1", fresh, check=False)
    assert p.returncode == 1 and "sweep: no cell 'w128-d4-sp-0.005-1'" in p.stderr


def test_fp32_residual_reaches_the_model_and_the_memory_plan(tmp_path):
    from ladder.nn.cost import estimate
    from ladder.nn.recipe import model_config

    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    default = config.load(tmp_path / "params.yaml")
    edit_params(tmp_path, lambda p: p["sizes"]["small"]["train"].update(fp32_residual=True))
    fp32 = config.load(tmp_path / "params.yaml")
    assert not model_config(default, "small", 50304).fp32_residual
    assert model_config(fp32, "small", 50304).fp32_residual and not model_config(fp32, "tiny", 50304).fp32_residual
    # with activation checkpointing the kept block inputs are the residual stream: twice the bytes in float32
    kept = [estimate(p, "small", 50304).activations_ckpt_gib for p in (default, fp32)]
    assert kept[1] - kept[0] == pytest.approx(12 * 2 * 768 * 32 * 1024 / 2**30)


def test_plan_divides_time_over_devices_and_state_only_under_fsdp(tmp_path):
    from ladder.nn.cost import estimate, hours

    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    one = estimate(config.load(tmp_path / "params.yaml"), "medium", 50304)
    edit_params(tmp_path, lambda p: p["sizes"]["medium"]["train"].update(devices=4))
    ddp = estimate(config.load(tmp_path / "params.yaml"), "medium", 50304)
    edit_params(tmp_path, lambda p: p["sizes"]["medium"]["train"].update(devices=4, parallel="fsdp", optimizer="adamw"))
    fsdp = estimate(config.load(tmp_path / "params.yaml"), "medium", 50304)
    assert hours(ddp, 1e15) == pytest.approx(hours(one, 1e15) / 4) == pytest.approx(hours(fsdp, 1e15))
    assert ddp.weights_optim_gib == one.weights_optim_gib == pytest.approx(4 * fsdp.weights_optim_gib)
    assert ddp.activations_gib == fsdp.activations_gib == one.activations_gib


def test_snakemake_config_is_refused_with_a_pointer_to_params(fresh):
    """`snakemake --config lr=...` would be silently ignored: every value lives in params.yaml."""
    p = sh("snakemake -n results/tiny/eval.json --config lr=0.1", fresh, check=False)
    assert p.returncode != 0
    assert "--config lr: not read here; set it in params.yaml or run `dvc exp run -S key=value`" in p.stdout + p.stderr


def test_dvc_set_param_rewrites_only_the_keys_it_sets(tmp_path):
    """`dvc exp run -S` rewrites params.yaml through its YAML round trip (dvc.utils.hydra.apply_overrides):
    the shipped file is in the form that round trip keeps, so an experiment's diff is its own keys with
    their comments, and a size's lr (the suggested experiment) is a key there to set."""
    from dvc.utils.hydra import apply_overrides

    shipped = (ROOT / "params.yaml").read_text()
    file = tmp_path / "params.yaml"
    file.write_text(shipped)
    apply_overrides(file, ["seed=1337"])  # the shipped value: nothing to change
    assert file.read_text() == shipped
    apply_overrides(file, ["sizes.tiny.train.lr=0.006", "scaling.budgets=[819200,1638400]"])
    diff = difflib.unified_diff(shipped.splitlines(), file.read_text().splitlines(), lineterm="", n=0)
    changed = [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert [" ".join(line.split("#")[0].split()) for line in changed] == ["- lr:", "+ lr: 0.006", "+ - 1638400"]
    assert changed[0].split("#")[1] == changed[1].split("#")[1]  # the comment stays
    assert config.load(file).derived("train", "tiny").lr == 0.006


def test_a_value_dvc_writes_unquoted_reads_back_as_dvc_reads_it(tmp_path):
    """DVC's round trip is YAML 1.2, where `off` is a string; PyYAML's 1.1 made `-S train.compile=off` a
    boolean, refused as train.compile. Only true and false are booleans here."""
    from dvc.utils.hydra import apply_overrides

    file = tmp_path / "params.yaml"
    file.write_text((ROOT / "params.yaml").read_text())
    apply_overrides(file, ["train.compile=off", "train.tie_weights=false", "++compare.variants.x.train.compile=on"])
    assert "  compile: off" in file.read_text()
    p = config.load(file)
    assert p.train.compile == "off" and p.train.tie_weights is False
    assert p.variant("x").train.compile == "on"
