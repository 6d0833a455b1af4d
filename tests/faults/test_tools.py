"""Commands around the pipeline: a user-given output path never replaces what the command did not
write, a size that is not under sizes: is named as such, bad options are one line. A trained model
and a checkpoint are checked before they are trusted: a config that train.json's sha256 does not
cover or that does not describe the weights is refused before a model is allocated, and a checkpoint
that fails its own sha256s is set aside in one line while training starts over."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest
from conftest import ENV
from faultlib import HERE, batch, check, copy, last_line, temps

GEN = ["generate", "--size", "tiny", "--prompt", "The"]
TRAIN = ["train", "--size", "tiny"]
NO_SUCH = "sizes.nosuch: no such size"
EXPORT = ["export-hf", "--size", "tiny", "--out", "exported"]
CONFIG, TRAIN_JSON, CKPT = "results/tiny/config.json", "results/tiny/train.json", "results/tiny/ckpt"
OPTIM, GARBAGE = f"{CKPT}/optim.pt", hashlib.sha256(b"garbage").hexdigest()
RETRAINED = [CKPT, TRAIN_JSON, "results/tiny/live"]  # what training from scratch rewrites (the model: bitwise the same)


def export_files(edited: str | None = None) -> dict[str, str]:
    """An earlier export as this command marks it: its files and ladder-export.json with their sha256
    (of `edited`, the sha256 it had before the user changed it)."""
    files = {name: f"{name} as exported" for name in ("config.json", "generation_config.json", "model.safetensors")}
    sha = {n: hashlib.sha256(t.encode()).hexdigest() for n, t in files.items()}
    if edited:
        files[edited] += ", then edited"
    manifest = {"written_by": "ladder export-hf", "size": "tiny", "sha256": sha}
    return {f"exported/{n}": t for n, t in files.items()} | {"exported/ladder-export.json": json.dumps(manifest)}


# id, command, setup, exit code, what the line must name
CASES = [
    ("export_over_data", ["export-hf", "--size", "tiny", "--out", "data"], {}, 1, "data: already exists"),
    (
        "export_over_user_folder",
        ["export-hf", "--size", "tiny", "--out", "mywork"],
        {"files": {"mywork/notes.txt": "mine"}},
        1,
        "mywork: already exists",
    ),
    ("export_over_tracked_file", ["export-hf", "--size", "tiny", "--out", "README.md"], {}, 1, "README.md: already"),
    # a transformers model of the same architecture that this command did not write (no manifest)
    (
        "export_over_llama_folder_not_ours",
        EXPORT,
        {"files": {"exported/config.json": '{"model_type": "llama"}', "exported/model.safetensors": "weights"}},
        1,
        "exported: already exists",
    ),
    (
        "export_over_its_earlier_export",
        EXPORT,
        {"files": export_files(), "may_change": ["exported"]},
        0,
        "wrote exported",
    ),
    (
        "export_over_edited_export",
        EXPORT,
        {"files": export_files(edited="generation_config.json")},
        1,
        "exported: already exists",
    ),
    (
        "export_over_export_with_a_file_added",
        EXPORT,
        {"files": {**export_files(), "exported/notes.txt": "mine"}},
        1,
        "exported: already exists",
    ),
    (
        "export_over_broken_manifest",
        EXPORT,
        {"files": {**export_files(), "exported/ladder-export.json": "[1,"}},
        1,
        "exported: already exists",
    ),
    # the model's shape, edited: train.json's sha256 refuses it before a model is allocated
    ("generate_config_edited", GEN, {"config": {"n_embd": 64}}, 1, CONFIG),
    ("eval_config_edited", ["eval", "--size", "tiny"], {"config": {"n_embd": 64}}, 1, CONFIG),
    # a model nothing recorded (no train.json): the config is checked against the weights' header
    ("generate_unrecorded_config_extra_key", GEN, {"config": {"bogus": 1}, "remove": [TRAIN_JSON]}, 1, CONFIG),
    ("generate_unrecorded_config_huge", GEN, {"config": {"n_embd": 65536}, "remove": [TRAIN_JSON]}, 1, CONFIG),
    ("generate_unrecorded_config_wrong_type", GEN, {"config": {"n_layer": "1"}, "remove": [TRAIN_JSON]}, 1, CONFIG),
    ("generate_unrecorded_config_not_object", GEN, {"files": {CONFIG: "[]"}, "remove": [TRAIN_JSON]}, 1, CONFIG),
    # a checkpoint that fails its check is set aside in one line naming the file; the model is the same
    ("ckpt_optim_garbage", TRAIN, {"files": {OPTIM: "garbage"}, "may_change": RETRAINED}, 0, OPTIM),
    ("ckpt_state_edited", TRAIN, {"state": {"step": 2}, "may_change": RETRAINED}, 0, f"{CKPT}/state.json"),
    # ... and one whose sha256 state.json records, but which does not unpickle
    (
        "ckpt_optim_unpicklable",
        TRAIN,
        {"files": {OPTIM: "garbage"}, "state": {"sha256": {"optim.pt": GARBAGE}}, "may_change": RETRAINED},
        0,
        OPTIM,
    ),
    (
        "attention_over_tracked_file",
        ["attention", "--size", "tiny", "--prompt", "a", "--out", "README.md"],
        {},
        1,
        "README.md: already exists",
    ),
    (
        "attention_over_folder",
        ["attention", "--size", "tiny", "--prompt", "a", "--out", "data"],
        {},
        1,
        "data: already exists",
    ),
    (
        "attention_under_a_file",
        ["attention", "--size", "tiny", "--prompt", "a", "--out", "README.md/a.png"],
        {},
        1,
        "README.md",
    ),
    ("attention_bad_layer", ["attention", "--size", "tiny", "--prompt", "a", "--layers", "5"], {}, 1, "--layers"),
    ("coordcheck_over_tracked_file", ["coord-check", "--out", "README.md"], {}, 1, "README.md: already exists"),
    (
        "coordcheck_csv_not_ours",
        ["coord-check", "--out", "fig.png"],
        {"files": {"fig.csv": "a,b\n1,2\n"}},
        1,
        "fig.csv: already exists",
    ),
    ("generate_no_such_size", ["generate", "--size", "nosuch", "--prompt", "a"], {}, 1, NO_SUCH),
    ("eval_no_such_size", ["eval", "--size", "nosuch"], {}, 1, NO_SUCH),
    ("train_no_such_size", ["train", "--size", "nosuch"], {}, 1, NO_SUCH),
    ("attention_no_such_size", ["attention", "--size", "nosuch", "--prompt", "a"], {}, 1, NO_SUCH),
    ("export_no_such_size", ["export-hf", "--size", "nosuch"], {}, 1, NO_SUCH),
    ("layer_stats_no_such_size", ["layer-stats", "--size", "nosuch"], {}, 1, NO_SUCH),
    ("sanity_no_such_size", ["sanity", "--size", "nosuch"], {}, 1, NO_SUCH),
    ("curves_no_such_size", ["curves", "tiny", "nosuch"], {}, 1, NO_SUCH),
    ("plan_no_such_size", ["plan", "nosuch"], {}, 1, NO_SUCH),
    ("curves_untrained_size", ["curves", "mini"], {}, 1, "results/mini/loss.tsv"),
    # `ladder compare`: a bad change is one line, params.yaml untouched, nothing trained
    ("compare_set_not_key_value", ["compare", "-S", "train.tie_weights"], {}, 1, "-S 'train.tie_weights': not key="),
    ("compare_set_shared_key", ["compare", "-S", "data.source=x"], {}, 1, "-S data.source: a variant changes lr or"),
    ("compare_set_deep_key", ["compare", "-S", "train.a.b=1"], {}, 1, "-S train.a.b: a variant changes lr or"),
    (
        "compare_set_unknown_train_key",
        ["compare", "-S", "train.bogus=1"],
        {},
        1,
        "compare.variants.bogus-1.train.bogus: unknown key",
    ),
    ("compare_set_bad_value", ["compare", "-S", "lr=5"], {}, 1, "compare.variants.lr-5.lr: Input should be less"),
    ("compare_no_such_variant", ["compare", "nosuch"], {}, 1, "no variant 'nosuch' in compare.variants"),
    ("compare_nothing_named", ["compare"], {}, 1, "name a variant, or give its changes"),
    ("compare_other_params", ["compare", "-S", "lr=0.001", "--params", "p.yaml"], {}, 1, "--params p.yaml: compare"),
    ("compare_exp_unknown", ["compare", "--exp", "nosuch"], {}, 1, "--exp nosuch: no such DVC experiment"),
]


def edited(project, setup: dict) -> dict:
    """A case's setup with its `config` and `state` edits (keys set in the project's config.json and
    checkpoint state.json, a dict's keys merged into it) turned into the files the driver writes."""
    setup, files = dict(setup), dict(setup.get("files", {}))
    for key, rel in (("config", CONFIG), ("state", f"{CKPT}/state.json")):
        if key in setup:
            raw = json.loads((project / rel).read_text())
            for k, v in setup.pop(key).items():
                raw[k] = raw.get(k, {}) | v if isinstance(v, dict) else v
            files[rel] = json.dumps(raw)
    return setup | {"files": files} if files else setup


@pytest.fixture(scope="module")
def tools_project(faults_base, tmp_path_factory):
    return copy(faults_base, tmp_path_factory, "tools")


@pytest.fixture(scope="module")
def results(tools_project):
    cases = [{"id": i, "argv": argv, **edited(tools_project, setup)} for i, argv, setup, _, _ in CASES]
    return batch(tools_project, cases)


@pytest.mark.parametrize("case_id, argv, setup, rc, names", CASES, ids=[c[0] for c in CASES])
def test_tools_refuse_in_one_line_and_replace_only_their_own_outputs(results, case_id, argv, setup, rc, names):
    if case_id.startswith("ckpt_"):  # training went on without the checkpoint, said so naming the file, same model
        r = results[case_id]
        assert r["rc"] == 0, r["stderr"][-3000:]
        assert f"ignoring unreadable checkpoint in {CKPT} ({names}" in r["stderr"], r["stderr"][-3000:]
        assert "starting over" in r["stderr"] and r["changed"] == [] and r["temps"] == [], r
    else:
        check(results[case_id], rc, names)


def test_export_replaces_its_own_export_and_nothing_else(tools_project, results):
    """A real export, exported again over itself (its marker recognised), then refused once a file in it
    was edited, with nothing changed; in one process. Runs after the batch, which leaves the project as
    it found it."""
    script = f"""import json, sys
from pathlib import Path
sys.path[:0] = {[str(HERE), str(HERE.parent)]!r}
from faultlib import changed, snapshot
from ladder import cli
argv = "export-hf --size tiny --out hf".split()
rcs = [cli.main(argv), cli.main(argv)]
card = Path("hf/README.md")
card.write_text(card.read_text() + "my notes")
before = snapshot(Path("."))
rcs.append(cli.main(argv))
print(json.dumps({{"rcs": rcs, "changed": changed(before, snapshot(Path(".")))}}))
"""
    try:
        p = subprocess.run([sys.executable, "-c", script], cwd=tools_project, env=ENV, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr[-3000:]
        assert json.loads(p.stdout) == {"rcs": [0, 0, 1], "changed": []}, p.stderr[-3000:]
        line = last_line(p.stderr)
        assert line.startswith("ladder export-hf: error: hf: already exists") and "README.md" in line, line
        assert temps(tools_project) == []
    finally:
        shutil.rmtree(tools_project / "hf", ignore_errors=True)
