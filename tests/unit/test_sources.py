"""The download stage on real local sources (jsonl, txt, parquet; compressed; folders and globs), caps,
and bad sources, each on a fresh copy of the repository: one `ladder download`, no pipeline."""

from __future__ import annotations

import gzip
import json
import lzma
import time

import pytest
from conftest import docs, edit_params, sh, use_source


@pytest.mark.parametrize(
    "name, writer",
    [
        (
            "corpus.jsonl",
            lambda p, rows: p.write_text("".join(json.dumps({"body": r, "id": i}) + "\n" for i, r in enumerate(rows))),
        ),
        (
            "corpus.jsonl.gz",
            lambda p, rows: p.write_bytes(
                gzip.compress("".join(json.dumps({"body": r}) + "\n" for r in rows).encode())
            ),
        ),
        ("corpus.txt.xz", lambda p, rows: p.write_bytes(lzma.compress("\n\n".join(rows).encode()))),
        (
            "corpus.txt.zst",
            lambda p, rows: p.write_bytes(
                __import__("zstandard").ZstdCompressor().compress("\n\n".join(rows).encode())
            ),
        ),
    ],
)
def test_local_sources(fresh, name, writer):
    rows = [f"document number {i} with some words in it" for i in range(5)]
    writer(fresh / name, rows)
    use_source(fresh, fresh / name, text_field="body", txt_split="blank_line")
    sh("ladder download", fresh)
    assert docs(fresh) == rows


def test_parquet_folder_and_glob(fresh):
    import pandas as pd

    folder = fresh / "corpus"
    folder.mkdir()
    for part in range(2):
        pd.DataFrame({"text": [f"part {part} doc {i}" for i in range(3)]}).to_parquet(folder / f"{part}.parquet")
    use_source(fresh, folder)
    sh("ladder download", fresh)
    assert docs(fresh) == [f"part {p} doc {i}" for p in range(2) for i in range(3)]
    use_source(fresh, f"{folder}/1.*")
    sh("ladder download", fresh)
    assert docs(fresh) == [f"part 1 doc {i}" for i in range(3)]


def test_caps(fresh):
    edit_params(fresh, lambda p: p["data"].update(max_docs=3, max_bytes=None))
    sh("ladder download", fresh)
    assert len(docs(fresh)) == 3


def test_unknown_hf_dataset_fails_fast_with_a_clear_message(fresh):
    edit_params(
        fresh,
        lambda p: (
            p["data"].update(source="hf"),
            p["data"]["hf"].update(name="no-such-org/no-such-dataset", timeout_s=15),
        ),
    )
    t0 = time.time()
    p = sh("ladder download", fresh, check=False)
    assert time.time() - t0 < 45
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1].startswith("ladder download: error: data.hf.name:"), p.stderr


def test_oversized_document_is_refused(fresh, monkeypatch):
    from ladder.data import sources
    from ladder.pipeline import config
    from ladder.stages import download

    (fresh / "big.jsonl").write_text(json.dumps({"text": "x" * 5000}) + "\n")
    use_source(fresh, fresh / "big.jsonl")
    monkeypatch.chdir(fresh)
    monkeypatch.setattr(sources, "MAX_DOC_BYTES", 4096)  # the real limit is 100 MB
    with pytest.raises(sources.SourceError, match="exceeds the limit of 4,096"):
        download.run(config.load())
    assert not list((fresh / "data/raw").iterdir())  # no output, no temporary left behind


def test_a_link_loop_reads_each_file_once(tmp_path):
    """`**` follows links: through a folder linked into itself, glob and folder sources reached one file
    by 40 paths and read it 40 times."""
    from ladder.data.sources import local_files

    (tmp_path / "loop").mkdir()
    (tmp_path / "loop/a.txt").write_text("one document\n")
    (tmp_path / "loop/self").symlink_to("../loop")
    assert [f.name for f in local_files(f"{tmp_path}/loop/**/*.txt")] == ["a.txt"]
    assert [f.name for f in local_files(f"{tmp_path}/loop")] == ["a.txt"]
