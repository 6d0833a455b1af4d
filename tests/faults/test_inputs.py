"""Bad and corrupt inputs, missing upstream outputs, numeric failure: one line naming the file,
nothing that existed changed. An unreadable checkpoint is said in one line and training starts over."""

from __future__ import annotations

import pytest
from faultlib import batch, check, copy

MODEL, CKPT = "results/tiny/model.safetensors", "results/tiny/ckpt"
TRAIN, EVAL = ["train", "--size", "tiny"], ["eval", "--size", "tiny"]
SHARD0 = "data/shards/train/train-00000.bin"


def source(path, **more):
    return {"data.source": path, **more}


# id, command, setup (files / truncate / remove / params / may_change), exit code, what the line must name
CASES = [
    ("source_missing", ["download"], {"params": source("inputs/nosuch.txt")}, 1, "inputs/nosuch.txt"),
    (
        "source_empty",
        ["download"],
        {"files": {"inputs/empty.txt": ""}, "params": source("inputs/empty.txt")},
        1,
        "data.source",
    ),
    (
        "source_control_chars",
        ["download"],
        {"files": {"inputs/bin.txt": "good text\n\x01\x02 bad\n"}, "params": source("inputs/bin.txt")},
        1,
        "inputs/bin.txt",
    ),
    (
        "jsonl_no_text_field",
        ["download"],
        {"files": {"inputs/d.jsonl": '{"body": "x"}\n'}, "params": source("inputs/d.jsonl")},
        1,
        "inputs/d.jsonl",
    ),
    (
        "jsonl_not_json",
        ["download"],
        {"files": {"inputs/bad.jsonl": '{"text": "a"}\n{oops\n'}, "params": source("inputs/bad.jsonl")},
        1,
        "inputs/bad.jsonl",
    ),
    ("glob_matches_nothing", ["download"], {"params": source("inputs/*.parquet")}, 1, "inputs/*.parquet"),
    ("raw_docs_missing", ["subset"], {"remove": ["data/raw/docs.jsonl"]}, 1, "data/raw/docs.jsonl"),
    ("subset_split_missing", ["tokenizer"], {"remove": ["data/subset/train.jsonl"]}, 1, "data/subset/train.jsonl"),
    ("tokenizer_missing", ["shard"], {"remove": ["data/tokenizer/tokenizer.json"]}, 1, "data/tokenizer/tokenizer.json"),
    ("index_missing", TRAIN, {"remove": ["data/shards/index.json"]}, 1, "data/shards/index.json"),
    ("index_garbage", TRAIN, {"files": {"data/shards/index.json": "garbage"}}, 1, "data/shards/index.json"),
    ("shard_truncated", TRAIN, {"truncate": {SHARD0: 100}}, 1, SHARD0),
    ("shard_missing", TRAIN, {"remove": [SHARD0]}, 1, SHARD0),
    ("plan_missing", TRAIN, {"remove": ["data/curriculum/base/plan.json"]}, 1, "data/curriculum/base/plan.json"),
    ("plan_garbage", TRAIN, {"files": {"data/curriculum/base/plan.json": "{"}}, 1, "data/curriculum/base/plan.json"),
    ("model_truncated_eval", EVAL, {"truncate": {MODEL: 5000}}, 1, MODEL),
    (
        "model_truncated_generate",
        ["generate", "--size", "tiny", "--prompt", "a"],
        {"truncate": {MODEL: 5000}},
        1,
        MODEL,
    ),
    (
        "model_truncated_export",
        ["export-hf", "--size", "tiny", "--out", "exported"],
        {"truncate": {MODEL: 5000}},
        1,
        MODEL,
    ),
    ("model_truncated_score", ["score"], {"truncate": {MODEL: 5000}}, 1, MODEL),
    ("model_replaced", EVAL, {"files": {MODEL: "x" * 107960}}, 1, MODEL),
    ("model_config_missing", EVAL, {"remove": ["results/tiny/config.json"]}, 1, "results/tiny/config.json"),
    ("train_json_garbage", ["score"], {"files": {"results/tiny/train.json": "[1,"}}, 1, "results/tiny/train.json"),
    ("eval_extra_missing", EVAL, {"params": {"eval.extra": {"web": "inputs/nosuch.txt"}}}, 1, "inputs/nosuch.txt"),
    ("prompts_file_missing", ["generate", "--size", "tiny", "--prompts-file", "inputs/p.txt"], {}, 1, "inputs/p.txt"),
    (  # checked as training starts, not at its first evaluation (after the whole budget, when eval_every is large)
        "val_split_shorter_than_a_window",
        TRAIN,
        {"params": {"sizes.tiny.train": {"seq_len": 262144, "batch_tokens": 262144, "micro_batch": 1}}},
        1,
        "fewer than one window of 262144",
    ),
    (
        "prompts_file_empty",
        ["generate", "--size", "tiny", "--prompts-file", "inputs/p.txt"],
        {"files": {"inputs/p.txt": "\n\n"}},
        1,
        "inputs/p.txt",
    ),
    # the model and train.json stay; the curves and the last finite checkpoint are the failed run's
    (
        "fp16_lr_one_diverges",
        TRAIN,
        {
            "params": {
                "lr": 1.0,
                "train.dtype": "fp16",
                "train.grad_clip": 0,
                "train.optimizer": "adamw",
                "sizes.tiny.train": {"tokens": 20480},
            },
            "may_change": [CKPT, "results/tiny/live"],
        },
        1,
        "at step 4 of 20",
    ),
    # an unreadable checkpoint is ignored in one line; the retrained outputs are the run's own
    (
        "ckpt_model_truncated",
        TRAIN,
        {
            "truncate": {f"{CKPT}/model.safetensors": 100},
            "may_change": [CKPT, "results/tiny/train.json", "results/tiny/live"],
        },
        0,
        "",
    ),
    (
        "ckpt_state_garbage",
        TRAIN,
        {
            "files": {f"{CKPT}/state.json": "garbage"},
            "may_change": [CKPT, "results/tiny/train.json", "results/tiny/live"],
        },
        0,
        "",
    ),
]


@pytest.fixture(scope="module")
def results(faults_base, tmp_path_factory):
    return batch(
        copy(faults_base, tmp_path_factory, "inputs"),
        [{"id": i, "argv": argv, **setup} for i, argv, setup, _, _ in CASES],
    )


@pytest.mark.parametrize("case_id, argv, setup, rc, names", CASES, ids=[c[0] for c in CASES])
def test_bad_inputs_are_one_line_naming_the_file(results, case_id, argv, setup, rc, names):
    if rc:
        check(results[case_id], rc, names)
    else:  # training went on without the checkpoint, said so naming it, and wrote the same model
        r = results[case_id]
        assert r["rc"] == 0, r["stderr"][-3000:]
        assert f"ignoring unreadable checkpoint in {CKPT}" in r["stderr"], r["stderr"][-3000:]
        assert r["changed"] == [] and r["temps"] == [], r
