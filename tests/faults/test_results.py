"""Commands that read results (`ladder summary`, `ladder log`) refuse an eval file missing a field
they show, or holding the wrong kind of value, in one line naming the file and the field."""

from __future__ import annotations

import json

import pytest
from faultlib import batch, check, copy

EVAL, PROV = "results/tiny/eval.json", "results/tiny/eval_provenance.json"


def without(path: str, key: str, base) -> str:
    doc = json.loads((base / path).read_text())
    del doc[key]
    return json.dumps(doc)


def replaced(path: str, key: str, value, base) -> str:
    doc = json.loads((base / path).read_text())
    doc[key] = value
    return json.dumps(doc)


@pytest.fixture(scope="module")
def results(faults_base, tmp_path_factory):
    b = faults_base
    cases = [
        ("summary_eval_field_missing", ["summary", "tiny"], {EVAL: without(EVAL, "val_bits_per_byte", b)}),
        ("summary_eval_field_text", ["summary", "tiny"], {EVAL: replaced(EVAL, "val_loss", "low", b)}),
        ("summary_eval_not_a_record", ["summary", "tiny"], {EVAL: "[1, 2]"}),
        ("summary_provenance_field_missing", ["summary", "tiny"], {PROV: without(PROV, "val", b)}),
        ("summary_samples_not_a_list", ["summary", "tiny"], {PROV: replaced(PROV, "samples", "none", b)}),
        ("log_eval_field_missing", ["log"], {EVAL: without(EVAL, "train_seconds", b)}),
    ]
    return batch(copy(b, tmp_path_factory, "results"), [{"id": c, "argv": a, "files": f} for c, a, f in cases])


@pytest.mark.parametrize(
    "case, names",
    [
        ("summary_eval_field_missing", f"{EVAL}: field 'val_bits_per_byte' missing or not a number"),
        ("summary_eval_field_text", f"{EVAL}: field 'val_loss' missing or not a number"),
        ("summary_eval_not_a_record", f"{EVAL}: field 'val_loss'"),
        ("summary_provenance_field_missing", f"{PROV}: field 'val.unigram_bits_per_byte'"),
        ("summary_samples_not_a_list", f"{PROV}: field 'samples'"),
        ("log_eval_field_missing", f"{EVAL}: field 'train_seconds'"),
    ],
)
def test_a_broken_eval_file_is_named(results, case, names):
    check(results[case], 1, names)
