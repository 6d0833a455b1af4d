"""What people look at: each job's log, `snakemake --report`, `dvc exp show` in 120 columns,
`dvc plots` drawn offline in a real browser, the summary's report card, and lm-eval on the export."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from conftest import ENV, edit_params, sh

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
browser = pytest.mark.skipif(not CHROMIUM, reason="needs a headless Chromium (Debian: apt-get install chromium)")
NARROW = "dvc exp show --no-pager --only-changed --drop 'Created|^(data|src|results)/' --keep '.*:val_bits_per_byte$'"


def rendered(page) -> str:
    """The page's DOM after its scripts ran, in headless Chromium with the network off."""
    p = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--proxy-server=127.0.0.1:9",
            "--dump-dom",
            f"file://{page}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def test_every_job_keeps_its_log(built):
    logs = built / ".ladder/logs"
    names = {p.stem for p in logs.glob("*.log")}
    assert {"download", "subset", "tokenizer", "shard", "curriculum", "score", "train@tiny", "eval@tiny"} <= names
    assert "eval@tiny: val loss" in (logs / "eval@tiny.log").read_text()
    assert "train@mini: done" in (logs / "train@mini.log").read_text()


def test_a_failing_job_leaves_its_error_in_its_log(project):
    edit_params(project, lambda p: p["eval"].update(extra={"gone": "no/such/file.txt"}))
    p = sh("snakemake --cores 1 results/tiny/eval.json", project, check=False)
    assert p.returncode != 0
    log = (project / ".ladder/logs/eval@tiny.log").read_text()
    assert "ladder eval: error:" in log and "no/such/file.txt" in log


@browser
def test_snakemake_report_shows_the_eval_results(project):
    # the command the summary suggests, as after `make demo`: tiny alone evaluated
    suggested = next(
        line.split("  ")[1]
        for line in sh("ladder summary tiny", project).stdout.splitlines()
        if line.startswith("  snakemake --report")
    )
    assert suggested == "snakemake --report report.html results/tiny/eval.json"
    for size in ("mini", "medium"):
        (project / f"results/{size}/eval.json").unlink()
    sh(suggested, project)
    html = (project / "report.html").read_text()
    assert "Each job" in html and "results/mini" not in html
    for name in ("eval.json", "samples.md", "curves.png"):
        assert f"results/tiny/{name}" in html
    assert "results/scaling/fit.png" in html
    assert "Evaluation" in rendered(project / "report.html")


def test_summary_prints_a_report_card(built):
    out = sh("ladder summary tiny", built).stdout
    ev = json.loads((built / "results/tiny/eval.json").read_text())
    assert f"{ev['val_bits_per_byte']:.3f} bits per byte" in out
    assert "unigram model" in out and "greedy sample: 'The history of" in out and "(chance 25%)" in out
    header, row = out.splitlines()[:2]
    assert header.split() == [
        "size",
        "params",
        "tokens",
        "val",
        "loss",
        "bits/byte",
        "unigram",
        "perplexity",
        "cloze",
        "train",
        "s",
        "tokens/s",
    ]
    params = json.loads((built / "results/tiny/eval_provenance.json").read_text())["params"]
    assert f"{ev['val_loss']:.3f}" in row.split() and f"{params / 1e6:.2f}M" in row.split()
    assert out.rstrip().splitlines()[-4] == "Next:"


def test_summary_names_a_missing_provenance_file(project):
    (project / "results/tiny/eval_provenance.json").unlink()
    p = sh("ladder summary tiny", project, check=False)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "eval_provenance.json: missing" in p.stderr


@browser
def test_two_sizes_fit_120_columns_and_plots_draw_offline(project):
    edit_params(project, lambda p: p["pipeline"].update(sizes={"tiny": "base", "mini": "scored"}))
    sh("dvc repro && git add -A && git commit -qm 'two sizes'", project)
    sh("dvc exp run -S lr=0.002 -n lr-test", project)
    narrow = sh(NARROW, project, env={**ENV, "COLUMNS": "120"}).stdout
    lines = narrow.splitlines()
    assert max(map(len, lines)) <= 120 and "…" not in narrow  # nothing cut to fit
    assert "results/tiny/eval.json:val_bits_per_byte" in narrow and "results/mini/eval.json:val_bits_per_byte" in narrow
    assert "lr-test" in narrow and "0.002" in narrow

    p = sh("dvc plots diff HEAD lr-test -o plots", project)
    assert "failed to load" not in p.stdout + p.stderr  # medium is built here but not in pipeline.sizes
    page = project / "plots/index.html"
    html = page.read_text()
    assert "cdn.jsdelivr" not in html
    assert "tiny: val loss (base plan)" in html and "mini: train loss (scored plan)" in html
    assert "results/medium" not in html
    # each size in pipeline.sizes drew its train and val loss, without a network
    assert rendered(page).count('class="marks"') == 4


def test_lm_eval_runs_the_three_project_tasks_on_the_tiny_export_offline(project):
    env = {**ENV, "HF_HUB_OFFLINE": "1"}
    p = sh("ladder lm-eval --size tiny", project, check=False, env=env)
    assert p.returncode == 1 and p.stderr.strip().endswith("run `ladder export-hf --size tiny` first")
    sh("ladder export-hf --size tiny", project, env=env)
    out = sh("ladder lm-eval --size tiny", project, env=env).stdout
    results = json.loads((project / "results/tiny/lm_eval.json").read_text())["results"]
    assert set(results) == {"ladder_val", "ladder_cloze", "ladder_last_word"}
    ours = json.loads((project / "results/tiny/eval.json").read_text())
    # the same measures by other code: lm-eval scores whole documents, eval.json consecutive windows
    bpb = results["ladder_val"]["bits_per_byte,none"]
    assert bpb != ours["val_bits_per_byte"] and abs(bpb - ours["val_bits_per_byte"]) / ours["val_bits_per_byte"] < 0.05
    assert f"(eval.json: {ours['val_bits_per_byte']})" in out
    items = len((project / "results/lm_eval/cloze.jsonl").read_text().splitlines())
    assert items == 20 and abs(results["ladder_cloze"]["acc_bytes,none"] - ours["cloze"]) <= 2 / items
    last_word = results["ladder_last_word"]
    assert 0 <= last_word["acc,none"] <= 1 and last_word["perplexity,none"] > 1
    (project / "results/tiny/model.safetensors").touch()  # retrained since the export
    p = sh("ladder lm-eval --size tiny", project, check=False, env=env)
    assert p.returncode == 1 and "rerun `ladder export-hf --size tiny`" in p.stderr
