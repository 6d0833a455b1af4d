"""Bad params: each refused before any work, in one line naming the key; nothing written."""

from __future__ import annotations

import pytest
from conftest import sh
from faultlib import batch, check, copy

TRAIN = ["train", "--size", "tiny"]
YAML_HEAD = "seed: 1\nlr: 0.001\n"
# id, command, params edits (or raw text), what the line must name
CASES = [
    ("micro_batch_not_dividing", TRAIN, {"train.micro_batch": 3}, "batch_tokens"),
    ("warmup_seq_len_not_dividing", TRAIN, {"curriculum.warmup": [{"seq_len": 48, "share": 0.2}]}, "curriculum.warmup"),
    (
        "warmup_shares_sum_to_one",
        ["curriculum"],
        {"curriculum.warmup": [{"seq_len": 32, "share": 1.0}]},
        "curriculum: warmup shares",
    ),
    ("unknown_key", TRAIN, {"train.learning_rate": 0.1}, "train.learning_rate"),
    ("missing_key", TRAIN, {"train.seq_len": "<delete>"}, "train.seq_len"),
    ("lr_above_one", TRAIN, {"lr": 2.0}, "lr"),
    ("lr_negative", TRAIN, {"lr": -0.1}, "lr"),
    ("size_lr_above_one", TRAIN, {"sizes.tiny.train": {"lr": 2.0}}, "sizes.tiny.train.lr"),
    ("shared_train_lr", TRAIN, {"train.lr": 0.01}, "train.lr: unknown key (the shared lr is the top-level `lr`"),
    ("rung_lr", ["fit"], {"scaling.train.lr": 0.01}, "scaling.train.lr"),
    ("cell_lr", TRAIN, {"sweep.train.lr": 0.01}, "sweep.train.lr"),
    ("vocab_too_small", ["tokenizer"], {"tokenizer.vocab_size": 100}, "tokenizer.vocab_size"),
    ("fraction_zero", ["subset"], {"subset.fraction": 0}, "subset.fraction"),
    ("val_fraction_one", ["subset"], {"subset.val_fraction": 1}, "subset.val_fraction"),
    ("dedup_unknown", ["subset"], {"subset.dedup": "fuzzy"}, "subset.dedup"),
    ("dtype_unknown", TRAIN, {"train.dtype": "fp8"}, "train.dtype"),
    ("devices_zero", TRAIN, {"train.devices": 0}, "train.devices"),
    ("heads_not_dividing", TRAIN, {"sizes.tiny.n_head": 3}, "n_embd"),
    ("size_override_bad", TRAIN, {"sizes.tiny.train": {"micro_batch": 0}}, "sizes.tiny.train.micro_batch"),
    ("size_override_unknown", TRAIN, {"sizes.tiny.train": {"nosuch": 1}}, "sizes.tiny.train.nosuch"),
    ("size_name_bad", TRAIN, {"sizes.ti ny": {"n_layer": 1, "n_head": 2, "n_embd": 32}}, "size name"),
    ("pipeline_unknown_size", ["download"], {"pipeline.sizes": {"tiny": "base", "huge": "base"}}, "pipeline.sizes"),
    ("pipeline_sizes_list", ["download"], {"pipeline.sizes": ["tiny"]}, "pipeline.sizes"),
    ("scorer_not_in_pipeline", ["score"], {"curriculum.scorer": "small"}, "curriculum.scorer"),
    ("scorer_on_scored_plan", ["score"], {"pipeline.sizes.tiny": "scored"}, "pipeline.sizes.tiny"),
    ("top_p_above_one", ["eval", "--size", "tiny"], {"eval.top_p": 2}, "eval.top_p"),
    ("cloze_choices_one", ["eval", "--size", "tiny"], {"eval.cloze_choices": 1}, "eval.cloze_choices"),
    ("hf_timeout_zero", ["download"], {"data.hf.timeout_s": 0}, "data.hf.timeout_s"),
    ("duplicate_key", ["download"], YAML_HEAD + "seed: 2\n", "duplicate key 'seed'"),
    ("yaml_syntax", ["download"], YAML_HEAD + "data: [unclosed\n", "line 4, column 1"),
    ("not_a_mapping", ["download"], "- a\n- b\n", "must be a mapping"),
    ("params_missing", ["download", "--params", "nosuch.yaml"], None, "nosuch.yaml"),
    ("rung_unknown", ["train", "--rung", "w99-d9-5"], {}, "scaling: no rung 'w99-d9-5'"),
    ("holdout_not_a_rung", ["fit"], {"scaling.holdout": ["w1-d1-1"]}, "scaling: holdout"),
    (
        "too_few_rungs_to_fit",
        ["fit"],
        {
            "scaling.shapes": ["w16-d1", "w32-d1", "w48-d1", "w64-d1"],
            "scaling.budgets": [4096],
            "scaling.holdout": ["w16-d1-4096"],
        },
        "scaling: holdout: leaves 3 rungs to fit at budget 4096",
    ),
    (
        "too_few_shapes",
        ["fit"],
        {"scaling.shapes": ["w16-d1", "w32-d1", "w48-d1"]},
        "scaling: shapes: must list at least 4",
    ),
    ("scaling_budget_key_gone", ["fit"], {"scaling.budget": "flops"}, "scaling.budget: unknown key"),
    ("rung_budget_in_train", ["predict", "--size", "tiny"], {"scaling.train": {"tokens": 5}}, "scaling.train"),
    ("two_budgets", TRAIN, {"train.flops": 1e12, "train.tokens": 4096}, "set one budget"),
    # non-finite floats pass a one-sided bound: refused everywhere, not key by key
    ("time_limit_infinite", TRAIN, {"train.max_hours": float("inf")}, "train.max_hours: Input should be a finite"),
    ("huber_delta_infinite", ["fit"], {"scaling.huber_delta": float("inf")}, "scaling.huber_delta"),
    ("temperature_nan", ["eval", "--size", "tiny"], {"eval.temperature": float("nan")}, "eval.temperature"),
    ("seed_negative", TRAIN, {"seed": -1}, "seed"),
    ("seed_beyond_numpy", TRAIN, {"seed": 2**32}, "seed: Input should be less than 4294967296"),
    ("head_dim_odd", TRAIN, {"sizes.tiny.n_embd": 66, "sizes.tiny.n_head": 2}, "sizes.tiny: the head dimension"),
    ("rung_head_dim_odd", ["fit"], {"scaling.head_dim": 33}, "scaling.head_dim"),
    # found by test_fuzz_params.py: a shape of no width or depth was refused as a size's n_head or n_layer, a
    # shape too wide as a size's n_embd, with no word of the sweep or the ladder
    ("sweep_shape_zero_width", ["sweep"], {"sweep.shapes": ["w0-d4", "w32-d4"]}, "sweep.shapes: 'w0-d4': width"),
    (
        "rung_shape_zero_depth",
        ["fit"],
        {"scaling.shapes": ["w16-d0", "w32-d1", "w48-d1", "w64-d1", "w64-d2"]},
        "scaling.shapes: 'w16-d0': width and depth must be positive",
    ),
    (
        "sweep_shape_too_wide",
        ["sweep"],
        {"sweep.shapes": ["w2097152-d4", "w32-d4"]},
        "sweep.shapes: w2097152-d4: n_embd: Input should be less than or equal to 1048576",
    ),
    # accepted, then `ladder plan` and the train stage's plan check died in torch with a traceback (or, for
    # millions of layers, built the model for hours); refused here without running anything but the check
    ("width_beyond_torch", TRAIN, {"sizes.tiny.n_embd": 2**31}, "sizes.tiny.n_embd"),
    ("depth_beyond_plan", ["download"], {"sizes.tiny.n_layer": 10**6}, "sizes.tiny.n_layer"),
    (
        "context_beyond_torch",
        TRAIN,
        {"sizes.tiny.train": {"seq_len": 2**64, "batch_tokens": 2**68, "micro_batch": 16}},
        "sizes.tiny.train.seq_len",
    ),
    ("tokens_per_param_overflows", ["plan", "small"], {"train.tokens_per_param": 1e308}, "train.tokens_per_param"),
    ("rung_budget_named", ["fit"], {"scaling.train": {"flops": 1e12}}, "scaling.train: sets a budget (flops)"),
    # `ladder compare`'s variants: only what the rungs read, checked as the rungs would take it
    (
        "variant_changes_shared_key",
        ["fit"],
        {"compare.variants": {"x": {"data": {"max_docs": 5}}}},
        "compare.variants.x.data: a variant may change lr and train.* only",
    ),
    (
        "variant_unknown_train_key",
        ["fit"],
        {"compare.variants": {"x": {"train": {"bogus": 1}}}},
        "compare.variants.x.train.bogus: unknown key",
    ),
    (
        "variant_sets_budget",
        ["fit"],
        {"compare.variants": {"x": {"train": {"tokens": 5}}}},
        "compare.variants.x.train: sets a budget (tokens)",
    ),
    ("variant_lr_above_one", ["fit"], {"compare.variants": {"x": {"lr": 3}}}, "compare.variants.x.lr"),
    (
        "variant_batch_not_dividing",
        ["fit"],
        {"compare.variants": {"x": {"train": {"micro_batch": 3}}}},
        "compare.variants.x.train.batch_tokens (1024) must be a multiple",
    ),
    ("variant_not_a_mapping", ["fit"], {"compare.variants": {"x": [1]}}, "compare.variants.x"),
    ("variant_name_bad", ["fit"], {"compare.variants": {"a b": {"lr": 0.001}}}, "compare: variants: name 'a b'"),
    ("noise_shape_not_a_rung", ["fit"], {"compare.noise_shapes": ["w8-d1"]}, "'w8-d1' is not one of scaling.shapes"),
    ("noise_shapes_empty", ["fit"], {"compare.noise_shapes": []}, "compare: noise_shapes: must list at least one"),
    (
        "compare_seed_is_the_rungs",
        ["fit"],
        {"seed": 7, "compare.seeds": [7], "compare.variants": {"x": {"lr": 0.001}}},
        "compare.seeds: 7 is the rungs' own",
    ),
    ("replica_unknown", ["train", "--replica", "x-baseline-w16-d1-2048-1"], {}, "compare: no replica"),
    ("arm_unknown", ["train", "--arm", "nosuch-w16-d1-2048"], {}, "compare: no run 'nosuch-w16-d1-2048'"),
    ("ab_unknown_variant", ["ab", "--variant", "nosuch"], {}, "compare.variants: no variant 'nosuch'"),
]


@pytest.fixture(scope="module")
def results(faults_base, tmp_path_factory):
    table = []
    for case_id, argv, params, _ in CASES:
        case = {"id": case_id, "argv": argv}
        if isinstance(params, dict):
            case["params"] = params
        elif isinstance(params, str):
            case["params_text"] = params
        table.append(case)
    return batch(copy(faults_base, tmp_path_factory, "config"), table)


@pytest.mark.parametrize("case_id, argv, params, names", CASES, ids=[c[0] for c in CASES])
def test_bad_params_are_one_line_naming_the_key(results, case_id, argv, params, names):
    check(results[case_id], 1, names)


@pytest.mark.parametrize(
    "content, names",
    [
        (b"seed: 1\nlr: \xff\xfe0.1\n", "bad.yaml: not UTF-8 text (byte 12: invalid start byte)"),
        (b"seed: 1\nlr: 0.1\x07\n", "bad.yaml: not valid YAML"),
        (None, "bad.yaml: cannot be read"),  # a folder where the file should be
    ],
    ids=["not_utf8", "control_character", "a_folder"],
)
def test_an_unreadable_params_file_is_one_line(tmp_path, content, names):
    """Read before anything else, so an empty folder is all it needs (the first two were tracebacks)."""
    bad = tmp_path / "bad.yaml"
    bad.mkdir() if content is None else bad.write_bytes(content)
    p = sh("ladder --params bad.yaml download", tmp_path, check=False)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"ladder download: error: {names}"), lines
    assert sorted(x.name for x in tmp_path.iterdir()) == [".ladder", "bad.yaml"]  # .ladder: the project lock
