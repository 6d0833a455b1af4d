"""Progress off a terminal: one line per refresh, integer counts for steps, scaled counts for bytes;
and the download bar's total, the corpus's size read from its files."""

from __future__ import annotations

import gzip
import io
import lzma
import sys

from conftest import ROOT

from ladder.data.sources import documents
from ladder.pipeline import paths
from ladder.pipeline.config import load
from ladder.pipeline.progress import progress
from ladder.stages.download import expected_bytes, text_size


def bar_output(monkeypatch, total, unit, updates) -> list[str]:
    err = io.StringIO()  # not a terminal, like a Snakemake log or CI
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.delenv("LADDER_PROGRESS", raising=False)
    with progress(total, desc="job", unit=unit, mininterval=0) as bar:
        for n in updates:
            bar.update(n)
    return err.getvalue().splitlines()


def test_off_a_terminal_each_refresh_is_a_line_of_its_own(monkeypatch):
    lines = bar_output(monkeypatch, 4, "step", [1, 1, 1, 1])
    assert "\r" not in "".join(lines) and all(line.startswith("job:") for line in lines)
    assert lines[0].endswith("0/4 [00:00<?, ?step/s]")
    assert " 4/4 " in lines[-1] and "100%" in lines[-1]
    assert not any(".00/" in line for line in lines)  # integer step counts, not 1.00/4.00


def test_bytes_are_counted_in_k_and_m(monkeypatch):
    lines = bar_output(monkeypatch, 5_000_000, "B", [2_000_000])
    assert "2.00M/5.00M" in lines[-1]


def test_text_size_of_plain_xz_and_gz_files(tmp_path):
    text = "Some text, naïve.\n\n" * 1000
    (tmp_path / "a.txt").write_text(text)
    (tmp_path / "a.txt.xz").write_bytes(lzma.compress(text.encode()))
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(text.encode()))
    n = len(text.encode())
    assert [text_size(tmp_path / f) for f in ("a.txt", "a.txt.xz", "a.txt.gz")] == [n, n, n]
    assert text_size(ROOT / paths.EMBEDDED) == len(lzma.open(ROOT / paths.EMBEDDED).read())


def test_download_counts_to_the_corpus_size_within_the_cap(monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = load(ROOT / "params.yaml").data
    size = text_size(paths.EMBEDDED)
    _, desc = documents(cfg)
    assert expected_bytes(cfg, desc) == min(size, cfg.max_bytes or size)
    small = cfg.model_copy(update={"max_bytes": 1000})
    assert expected_bytes(small, desc) == 1000
    assert expected_bytes(cfg, {"kind": "hf"}) == cfg.max_bytes  # a stream gives no size: the cap
