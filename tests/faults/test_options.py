"""Every command-line option is range-checked by the parser: a bad value is argparse's one line naming
the option (exit 2), before anything is read or written."""

from __future__ import annotations

import pytest
from faultlib import batch, check, copy

GEN = ["generate", "--size", "tiny", "--prompt", "The"]
# id, command, what the line must name
CASES = [
    ("plan_budget_inf", ["plan", "--budget", "inf"], "argument --budget: 'inf'"),
    ("sanity_zero_steps", ["sanity", "--size", "tiny", "--steps", "0"], "argument --steps: '0': must be at least 1"),
    ("sanity_zero_rows", ["sanity", "--size", "tiny", "--rows", "0"], "argument --rows: '0'"),
    ("coordcheck_nan_lr", ["coord-check", "--lr", "nan"], "argument --lr: 'nan': must be a finite number"),
    ("coordcheck_negative_lr", ["coord-check", "--lr", "-1"], "argument --lr: '-1': must be greater than 0"),
    ("coordcheck_seed_range", ["coord-check", "--seed", "-1"], "argument --seed: '-1'"),
    ("coordcheck_zero_width", ["coord-check", "--widths", "64", "0"], "argument --widths: '0'"),
    ("lm_eval_zero_limit", ["lm-eval", "--size", "tiny", "--limit", "0"], "argument --limit: '0'"),
    ("lm_eval_zero_batch", ["lm-eval", "--size", "tiny", "--batch-size", "0"], "argument --batch-size: '0'"),
    ("generate_negative_top_k", [*GEN, "--top-k", "-1"], "argument --top-k: '-1': must be at least 0"),
    ("generate_negative_temperature", [*GEN, "--temperature", "-1"], "--temperature: '-1': must be at least 0"),
    ("generate_nan_temperature", [*GEN, "--temperature", "nan"], "argument --temperature: 'nan': must be a finite"),
    ("generate_top_p_zero", [*GEN, "--top-p", "0"], "argument --top-p: '0': must be greater than 0"),
    ("generate_top_p_above_one", [*GEN, "--top-p", "1.5"], "argument --top-p: '1.5': must be at most 1"),
    ("generate_no_new_tokens", [*GEN, "--max-new-tokens", "0"], "argument --max-new-tokens: '0'"),
    ("generate_seed_range", [*GEN, "--seed", "4294967296"], "argument --seed: '4294967296'"),
    ("attention_negative_layer", ["attention", "--size", "tiny", "--prompt", "a", "--layers", "-1"], "--layers: '-1'"),
]


@pytest.fixture(scope="module")
def results(faults_base, tmp_path_factory):
    return batch(copy(faults_base, tmp_path_factory, "options"), [{"id": c, "argv": a} for c, a, _ in CASES])


@pytest.mark.parametrize("case, argv, names", CASES, ids=[c[0] for c in CASES])
def test_option_out_of_range(results, case, argv, names):
    check(results[case], 2, names)
