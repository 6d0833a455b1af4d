"""The trained tokenizer as the rest of the pipeline sees it: loading it, its end-of-text token, the
bytes each token stands for, and decoding a stream of ids without splitting a character."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from ladder.pipeline import paths
from ladder.pipeline.files import need

EOT = "<|endoftext|>"
MAX_CHAR_TOKENS = 4  # a UTF-8 character is at most 4 bytes, so at most 4 tokens


def load(path: Path = paths.TOKENIZER) -> Tokenizer:
    return Tokenizer.from_file(str(need(path, "tokenizer")))


def token_bytes(tok: Tokenizer) -> np.ndarray:
    """UTF-8 bytes each token id stands for (0 for special tokens).

    Byte-level BPE maps each byte to one printable character, so a token's length in characters
    is its length in bytes.
    """
    vocab = tok.get_vocab_size()
    specials = {t.content for t in tok.get_added_tokens_decoder().values()}
    out = np.zeros(vocab, dtype=np.int64)
    for i in range(vocab):
        piece = tok.id_to_token(i)
        out[i] = 0 if piece in specials else len(piece)
    return out


def decode_stream(tok: Tokenizer, ids: Iterable[int]) -> Iterator[tuple[str, int]]:
    """(text, how many ids it took) for a stream of ids, as soon as the pending ids end on a whole
    character: byte-level BPE may split an accented letter or a CJK character over 2-3 tokens."""
    pending: list[int] = []
    for i in ids:
        pending.append(i)
        text = tok.decode(pending)
        # A trailing U+FFFD is a character cut short; wait for its other bytes, unless they cannot come.
        if text.endswith("\ufffd") and len(pending) < MAX_CHAR_TOKENS:
            continue
        yield text, len(pending)
        pending = []
    if pending:
        yield tok.decode(pending), len(pending)
