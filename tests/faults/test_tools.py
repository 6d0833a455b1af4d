"""Commands around the pipeline: a user-given output path never replaces what the command did not
write, a size that is not under sizes: is named as such, bad options are one line."""

from __future__ import annotations

import pytest
from faultlib import batch, check, copy

GEN = ["generate", "--size", "tiny", "--prompt", "The"]
NO_SUCH = "sizes.nosuch: no such size"
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
    (
        "export_over_earlier_export",
        ["export-hf", "--size", "tiny", "--out", "exported"],
        {
            "files": {"exported/config.json": '{"model_type": "llama"}', "exported/README.md": "an earlier card"},
            "may_change": ["exported"],
        },
        0,
        "wrote exported",
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
    ("generate_zero_tokens", [*GEN, "--max-new-tokens", "0"], {}, 1, "--max-new-tokens"),
    ("generate_top_p_above_one", [*GEN, "--top-p", "2"], {}, 1, "--top-p"),
    ("generate_negative_temperature", [*GEN, "--temperature", "-1"], {}, 1, "--temperature"),
]


@pytest.fixture(scope="module")
def results(faults_base, tmp_path_factory):
    return batch(
        copy(faults_base, tmp_path_factory, "tools"),
        [{"id": i, "argv": argv, **setup} for i, argv, setup, _, _ in CASES],
    )


@pytest.mark.parametrize("case_id, argv, setup, rc, names", CASES, ids=[c[0] for c in CASES])
def test_tools_refuse_in_one_line_and_replace_only_their_own_outputs(results, case_id, argv, setup, rc, names):
    check(results[case_id], rc, names)
