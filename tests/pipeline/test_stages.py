"""Each data stage on real text: determinism, no leakage, shard round trips, bad input (sources on their
own: tests/unit/test_sources.py)."""

from __future__ import annotations

import json
from contextlib import chdir
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ENV, docs, edit_params, planned, sh, use_source

from ladder.data.shards import read_shard


def test_embedded_corpus_reads_as_titled_articles(built):
    manifest = json.loads((built / "data/raw/manifest.json").read_text())
    first = docs(built)[0]
    assert first.startswith("Messalina\n\nValeria Messalina")
    assert manifest["source"]["kind"] == "embedded" and manifest["documents"] == len(docs(built))
    assert len(manifest["sha256"]) == 64


@pytest.mark.parametrize(
    "content, field, message",
    [
        (b"", "text", "yielded no text"),
        (b'{"body": "x"}\n', "text", "no text field 'text'"),
        (b"\xff\xfe\x00bad bytes\n", None, "not UTF-8"),
        (bytes(range(256)) * 64, None, "not UTF-8"),
        (b"\x00\x01\x02\x03" * 2000, None, "binary"),
    ],
)
def test_bad_sources_fail_cleanly_and_keep_earlier_outputs(built, tmp_path, content, field, message):
    import shutil

    project = tmp_path / "p"
    shutil.copytree(built, project)
    before = (project / "data/raw/docs.jsonl").read_bytes()
    bad = project / ("bad.jsonl" if field else "bad.txt")
    bad.write_bytes(content)
    use_source(project, bad, txt_split="line")
    p = sh("ladder download", project, check=False)
    assert p.returncode == 1
    assert message in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert (project / "data/raw/docs.jsonl").read_bytes() == before
    assert not list((project / "data/raw").glob(".*tmp*"))


def test_subset_is_deterministic_and_splits_by_document(built, tmp_path):
    train = (built / "data/subset/train.jsonl").read_text().splitlines()
    val = (built / "data/subset/val.jsonl").read_text().splitlines()
    assert train and val and not set(train) & set(val)
    stats = json.loads((built / "data/subset/stats.json").read_text())
    assert stats["kept"]["train"]["documents"] == len(train)
    assert stats["documents_in"] == len(docs(built))
    sh("ladder subset", built)
    assert (built / "data/subset/train.jsonl").read_text().splitlines() == train


def test_subset_drops_duplicates_and_short_documents(fresh):
    rows = (
        ["a long enough document about cats"] * 3 + ["short"] + [f"another long enough document {i}" for i in range(20)]
    )
    (fresh / "c.jsonl").write_text("".join(json.dumps({"text": r}) + "\n" for r in rows))
    use_source(fresh, fresh / "c.jsonl")
    edit_params(fresh, lambda p: p["subset"].update(min_chars=10, val_fraction=0.3))
    sh("ladder download && ladder subset", fresh)
    stats = json.loads((fresh / "data/subset/stats.json").read_text())
    assert stats["dropped"]["duplicate"] == 2 and stats["dropped"]["too_short"] == 1
    kept = stats["kept"]["train"]["documents"] + stats["kept"]["val"]["documents"]
    assert kept == 21


def test_tokenizer_loads_with_transformers(built):
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_file=str(built / "data/tokenizer/tokenizer.json"), eos_token="<|endoftext|>"
    )
    text = "The history of Rome, in 3 words: “veni, vidi, vici”."
    assert tok.decode(tok(text)["input_ids"]) == text
    report = json.loads((built / "data/tokenizer/report.json").read_text())
    assert report["vocab_size"] == 512 and 1.5 < report["bytes_per_token"] < 6


def test_shards_round_trip_and_never_mix_splits(built):
    from tokenizers import Tokenizer

    index = json.loads((built / "data/shards/index.json").read_text())
    tok = Tokenizer.from_file(str(built / "data/tokenizer/tokenizer.json"))
    eot = index["eot_id"]
    for split in ("train", "val"):
        ids = np.concatenate([read_shard(built / "data/shards" / split / s["file"]) for s in index[split]["shards"]])
        assert ids.dtype == np.uint16 and len(ids) == index[split]["tokens"]
        pieces = [tok.decode(d.tolist()) for d in np.split(ids, np.flatnonzero(ids == eot))[1:]]
        texts = [json.loads(line)["text"] for line in (built / f"data/subset/{split}.jsonl").read_text().splitlines()]
        assert pieces == texts
        if split == "train":
            train_docs = set(pieces)
    assert not train_docs & set(pieces)


def test_shards_are_deterministic_whatever_the_threads(built):
    index = (built / "data/shards/index.json").read_text()
    for threads in ("1", "2"):
        sh("ladder shard", built, env=ENV | {"RAYON_NUM_THREADS": threads})
        assert (built / "data/shards/index.json").read_text() == index


def test_corrupt_shard_is_refused_at_training_time(project):
    shard = next((project / "data/shards/train").glob("*.bin"))
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    p = sh("ladder train --size tiny", project, check=False)
    assert p.returncode == 1 and "sha256 does not match" in p.stderr and shard.name in p.stderr
    shard.unlink()
    p = sh("ladder train --size tiny", project, check=False)
    assert p.returncode == 1 and "missing" in p.stderr and shard.name in p.stderr


def test_near_duplicates_are_dropped_when_asked(fresh):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5000)]
    base = list(rng.choice(words, 300))
    edited = base[:150] + ["changed"] + base[151:]  # one word of 300 differs
    others = [" ".join(rng.choice(words, 300)) for _ in range(30)]  # unrelated documents
    rows = [" ".join(base), " ".join(edited)] + others
    (fresh / "c.jsonl").write_text("".join(json.dumps({"text": r}) + "\n" for r in rows))
    use_source(fresh, fresh / "c.jsonl")
    edit_params(fresh, lambda p: p["subset"].update(dedup="near", min_chars=10, val_fraction=0.3))
    sh("ladder download && ladder subset", fresh)
    stats = json.loads((fresh / "data/subset/stats.json").read_text())
    assert stats["dropped"].get("near_duplicate") == 1


@pytest.mark.parametrize(
    "order, direction", [("length", "easy_first"), ("length", "hard_first"), ("compressibility", "easy_first")]
)
def test_curriculum_orders_documents_by_difficulty(project, order, direction):
    edit_params(project, lambda p: p["curriculum"].update(order=order, direction=direction))
    sh("ladder curriculum", project)
    table = np.load(project / "data/curriculum/base/order.npy")
    plan = json.loads((project / "data/curriculum/base/plan.json").read_text())
    assert plan["order"] == order and plan["direction"] == direction and len(table) == plan["documents"]
    if order == "length":
        assert list(table[:, 1]) == sorted(table[:, 1], reverse=direction == "hard_first")
    # every document exactly once
    assert sorted(table[:, 0].tolist()) == sorted(set(table[:, 0].tolist()))
    sh("ladder train --size tiny", project)


def test_random_order_is_a_seeded_shuffle(project):
    """The control for the difficulty orders: every document once, the same shuffle for a seed,
    another for another seed, and a rerun of the stage when the seed changes."""
    base = np.load(project / "data/curriculum/base/order.npy")
    natural = base[np.argsort(base[:, 0])]  # the documents in corpus order
    tables = {}
    for seed in (1, 1, 2):
        edit_params(
            project,
            lambda p, seed=seed: (p["curriculum"].update(order="random", direction="hard_first"), p.update(seed=seed)),
        )
        sh("ladder curriculum", project)
        table = np.load(project / "data/curriculum/base/order.npy")
        assert sorted(map(tuple, table)) == sorted(map(tuple, natural))
        assert seed not in tables or np.array_equal(tables[seed], table)
        tables[seed] = table
    plan = json.loads((project / "data/curriculum/base/plan.json").read_text())
    assert plan["order"] == "random" and plan["seed"] == 2 and plan["direction"] is None
    assert not np.array_equal(tables[1], tables[2]) and not np.array_equal(tables[1], natural)
    edit_params(project, lambda p: p.update(seed=3))
    assert planned(project, "data/curriculum/base/order.npy")["curriculum"] == 1


def test_scored_plan_orders_documents_by_the_scorer_loss(built):
    """The scores are tiny's real per-document losses, and medium trained on the order they give."""
    from ladder.nn.checkpoint import load_trained
    from ladder.nn.loader import Concat

    folder = built / "data/curriculum/scored"
    plan = json.loads((folder / "plan.json").read_text())
    table, scores = np.load(folder / "order.npy"), np.load(folder / "scores.npy")
    base = np.load(built / "data/curriculum/base/order.npy")
    natural = base[np.argsort(base[:, 0])]  # the documents in corpus order
    assert plan["order"] == "loss" and plan["scorer"] == "tiny" and len(table) == len(scores) == plan["documents"]
    assert plan["scorer_model_sha256"] == json.loads((built / "results/tiny/train.json").read_text())["model_sha256"]
    doc = {int(start): k for k, start in enumerate(natural[:, 0])}
    assert [scores[doc[int(a)]] for a in table[:, 0]] == sorted(scores)  # easiest first
    assert sorted(map(tuple, table.tolist())) == sorted(map(tuple, natural.tolist()))

    # the document losses, weighted by the predictions each document makes, add up to the model's
    # total loss over the scorer's windows (consecutive, seq_len long, the last one shorter)
    with chdir(built):
        model = load_trained("tiny", torch.device("cpu"))
        train = Concat("train", json.loads(Path("data/shards/index.json").read_text()))
        L, n, total = model.config.block_size, train.size, 0.0
        with torch.no_grad():
            for a in range(0, n - 1, L):
                k = min(L, n - 1 - a)
                x, y = (torch.from_numpy(train.read(b, k).astype(np.int64))[None] for b in (a, a + 1))
                total += torch.nn.functional.cross_entropy(model(x)[0][0], y[0], reduction="sum").item()
    predictions = natural[:, 1].copy()
    predictions[np.argmax(natural[:, 0])] -= 1  # the last token of the stream predicts nothing
    assert predictions.sum() == n - 1
    assert np.isclose(float((scores.astype(np.float64) * predictions).sum()), total, rtol=1e-5)

    medium = json.loads((built / "results/medium/train.json").read_text())["curriculum"]
    assert medium["plan"] == "scored" and medium["order_sha256"] == plan["order_sha256"]


def test_score_without_a_trained_scorer_fails_and_keeps_the_plan(project):
    plan = (project / "data/curriculum/scored/plan.json").read_bytes()
    (project / "results/tiny/train.json").unlink()
    p = sh("ladder score", project, check=False)
    assert p.returncode == 1
    assert (
        p.stderr.strip()
        == "ladder score: error: results/tiny/train.json: missing trained scorer (tiny) (run the upstream stage first)"
    )
    assert (project / "data/curriculum/scored/plan.json").read_bytes() == plan


def test_shards_switch_to_uint32_past_65536_tokens(tmp_path):
    from ladder.data.shards import ShardWriter, dtype_for

    assert dtype_for(65536) == np.uint16 and dtype_for(65537) == np.uint32
    ids = np.array([0, 65535, 65536, 100_000, 7], dtype=np.int64)
    writer = ShardWriter(tmp_path, "train", dtype_for(100_001), shard_tokens=3)
    writer.write(ids)
    files = writer.finish()
    assert [f["tokens"] for f in files] == [3, 2]
    back = np.concatenate([read_shard(tmp_path / f["file"]) for f in files])
    assert back.dtype == np.uint32 and back.tolist() == ids.tolist()
