"""bench/throughput.py runs and reports sane rows: CPU runs of tiny, checked for sense, not speed."""

from __future__ import annotations

import json
import math

from conftest import sh

SMOKE = (
    "python bench/throughput.py --device cpu --no-compile --sizes tiny --seq-len 64 --micro-batch 2 "
    "--steps 2 --warmup 1"
)


def bench(project, tmp_path, *flags: str) -> tuple[dict, str]:
    rows = tmp_path / "rows.json"
    out = sh(f"{SMOKE} --json {rows} {' '.join(flags)}", project).stdout
    (row,) = json.loads(rows.read_text())
    return row, out


def test_throughput_reads_the_pipelines_shards(built, tmp_path):
    vocab = json.loads((built / "data/shards/index.json").read_text())["vocab_size"]
    row, out = bench(built, tmp_path, "--data", "shards")
    assert f"train shards (vocab {vocab})" in out
    assert row["tok_s"] > 0 and row["tokens_per_step"] == 2 * 64
    assert row["loss_vs_fp32_eager"] == 0  # eager fp32 on the CPU: the timed step is the reference model
    assert math.isfinite(row["final_loss"])


def test_throughput_gpt2_layout_is_a_working_model(built, tmp_path):
    """The like-for-like diagnostic trains: loss at init near ln(V) (nothing is broken), then finite."""
    llama, _ = bench(built, tmp_path, "--vocab", "512")
    gpt2, out = bench(built, tmp_path, "--vocab", "512", "--layout", "gpt2")
    assert "layout=gpt2" in out
    assert gpt2["params_M"] != llama["params_M"]  # GELU 4C and learned positions, not SwiGLU
    for row in (llama, gpt2):
        assert abs(row["final_loss"] - math.log(512)) < 1.0, row


def test_throughput_head_dim_keeps_the_parameters(built, tmp_path):
    """--head-dim regroups the same width into other heads: same parameters, same FLOPs (MFU compares)."""
    default, _ = bench(built, tmp_path, "--vocab", "512")
    wide, out = bench(built, tmp_path, "--vocab", "512", "--head-dim", "8", "--fp32-residual")
    assert "head_dim=8" in out and "fp32_residual=True" in out
    assert wide["params_M"] == default["params_M"] and wide["flops_per_token"] == default["flops_per_token"]


def test_throughput_batch_tokens_accumulates_and_times_the_update(built, tmp_path):
    """--batch-tokens steps as training does (micro-batches accumulated), and the update's own time is a
    part of the step's."""
    row, out = bench(built, tmp_path, "--vocab", "512", "--batch-tokens", "384")
    assert row["grad_accum"] == 3 and row["tokens_per_step"] == 384
    assert 0 < row["update_ms_median"] < row["step_ms_median"] and 0 < row["update_share"] < 1
    assert "| tiny | ladder | muon | " in out and "| 2 x 3 |" in out


def test_throughput_bad_batch_or_control_fails_in_one_line(built):
    p = sh(f"{SMOKE} --batch-tokens 100", built, check=False)
    assert (p.returncode, p.stderr.strip()) == (
        1,
        "throughput: error: --batch-tokens 100 is no multiple of micro-batch 2 x 64",
    )
    p = sh(f"{SMOKE} --nanogpt nowhere/model.py", built, check=False)
    assert p.returncode == 2 and p.stderr.strip().endswith(
        "error: --nanogpt nowhere/model.py: no such file (karpathy/nanoGPT's model.py)"
    )


def test_throughput_without_shards_fails_in_one_line(fresh):
    p = sh(f"{SMOKE} --data shards", fresh, check=False)
    assert p.returncode == 1
    assert (
        p.stderr.strip()
        == "throughput: error: data/shards/index.json: missing shard index (run the upstream stage first)"
    )
