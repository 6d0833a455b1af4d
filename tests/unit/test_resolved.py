"""`ladder config`: a run's settings resolved as training resolves them, overrides marked."""

from __future__ import annotations

import yaml
from conftest import ROOT, sh

from ladder.pipeline import config
from ladder.tools.resolved import render, resolved


def test_a_size_gets_the_shared_block_with_its_own_overrides_marked():
    params = config.load(ROOT / "params.yaml")
    doc, origins = resolved(params, "train", "mini")
    own = {k: v for k, v in params.sizes["mini"].train.items() if k != "lr"}  # its own lr is the run's lr
    assert own, "the shipped mini overrides some train settings"
    assert all(doc["train"][k] == v and origins[k] == "sizes.mini.train" for k, v in own.items())
    assert set(origins) == set(own)
    assert doc["train"] == params.train_for("mini").model_dump(mode="json")  # what training reads
    assert yaml.safe_load(render(doc, origins)) == doc  # the comments are YAML comments


def test_a_rung_is_shaped_by_its_name(tmp_path):
    params = config.load(ROOT / "params.yaml")
    rung = params.scaling.rungs()[0]  # e.g. w32-d1-819200
    doc, origins = resolved(params, "rung", rung)
    width, depth, budget = rung.removeprefix("w").replace("-d", "-").split("-")
    assert doc["model"]["n_embd"] == int(width) and doc["model"]["n_layer"] == int(depth)
    assert doc["train"]["tokens"] == int(budget) and "tokens" in origins


def test_the_command_names_an_unknown_size_in_one_line():
    p = sh("ladder config --size nosuch", ROOT, check=False)
    assert p.returncode == 1 and p.stderr.strip().splitlines() == [
        "ladder config: error: params.yaml: sizes.nosuch: no such size (have: tiny, mini, small, medium)"
    ]
