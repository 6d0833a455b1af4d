"""Stage 3, tokenizer: byte-level BPE trained with Hugging Face `tokenizers` on the train split.

Training sees a bounded prefix of the train split (`tokenizer.sample_bytes`), so memory stays flat
on large corpora. The report gives bytes per token on val (lower is better compression) and the
share of the vocabulary that val text actually uses.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from ladder.data.tokens import EOT
from ladder.pipeline import paths, stamps
from ladder.pipeline.config import Params, load
from ladder.pipeline.config import Tokenizer as TokenizerParams
from ladder.pipeline.files import LadderError, atomic, jsonl_texts, need, sha256_file, write_json
from ladder.pipeline.progress import log, progress


def train_bpe(cfg: TokenizerParams) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    train = paths.SPLITS["train"]
    size = min(train.stat().st_size, cfg.sample_bytes)
    with progress(size, desc="tokenizer", unit="B") as bar:

        def docs():
            for batch in jsonl_texts(train, cfg.sample_bytes):
                bar.update(sum(len(t) for t in batch))
                yield from batch

        tok.train_from_iterator(docs(), trainer=trainer)
    return tok


def quality(tok: Tokenizer) -> dict:
    n_bytes = n_tokens = 0
    used: set[int] = set()
    for batch in jsonl_texts(paths.SPLITS["val"]):
        for enc in tok.encode_batch(batch):
            n_tokens += len(enc.ids)
            used.update(enc.ids)
        n_bytes += sum(len(t.encode()) for t in batch)
    vocab = tok.get_vocab_size()
    return {
        "vocab_size": vocab,
        "val_bytes": n_bytes,
        "val_tokens": n_tokens,
        "bytes_per_token": round(n_bytes / max(n_tokens, 1), 4),
        "vocab_used_on_val": round(len(used) / vocab, 4),
    }


def run(params: Params) -> dict:
    cfg = params.tokenizer
    for split, path in paths.SPLITS.items():
        need(path, f"{split} split")
    tok = train_bpe(cfg)
    if tok.token_to_id(EOT) is None:
        raise LadderError(f"tokenizer.vocab_size: {cfg.vocab_size} leaves no room for the {EOT} token")
    report = quality(tok) | {
        "eot_id": tok.token_to_id(EOT),
        "params": cfg.model_dump(),
        "built_from": stamps.stamp(params, "tokenizer"),
    }
    with atomic(paths.TOKENIZER, paths.TOKENIZER_REPORT) as (tmp_tok, tmp_report):
        tok.save(str(tmp_tok))
        report["sha256"] = sha256_file(tmp_tok)
        write_json(tmp_report, report)
    log.info(
        "tokenizer: vocab %d, %.2f bytes/token on val, %.0f%% of the vocab used on val",
        report["vocab_size"],
        report["bytes_per_token"],
        100 * report["vocab_used_on_val"],
    )
    return report


def main(args) -> None:
    run(load(args.params))
