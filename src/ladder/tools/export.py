"""`ladder export-hf --size S`: a trained size as a Hugging Face `transformers` Llama model folder.

The model uses Llama's layout and names, and GPT.hf_config / GPT.hf_state_dict give the Llama
config and weights with the μP constants folded in (see model.py). config.json,
generation_config.json and tokenizer_config.json are written as plain JSON rather than by
`transformers`, so the folder loads in every version from 4.45 on (5.x renamed rope_theta and the
tokenizer class). <|endoftext|> is bos, eos and pad (batched generation and lm-eval pad with it),
and the tokenizer returns only what a Llama model takes (`input_ids`, `attention_mask`), so
`model(**tok(text, return_tensors="pt"))` works. Before the folder replaces a previous export,
`transformers` loads it back and must reproduce our logits.

The folder is written whole into a temporary sibling and renamed into place, and it ends with
ladder-export.json, the sha256 of every file written. That marker, never a file name or a model
type, is how a later run knows the folder for its own: it replaces a folder only when the marker's
files are exactly what the folder holds, each unchanged. Anything else there (another transformers
model, files of the user's, an export edited since) is refused in one line, and nothing is touched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import save_file

from ladder.data import tokens
from ladder.data.tokens import EOT
from ladder.nn.checkpoint import load_trained
from ladder.nn.model import GPT
from ladder.pipeline import config, paths
from ladder.pipeline.files import LadderError, atomic, need, read_json, sha256_file, write_json
from ladder.pipeline.progress import log

TOLERANCE = 1e-4  # largest |logit difference| allowed between transformers and us, in fp32
MANIFEST = "ladder-export.json"  # {"written_by": ..., "sha256": {file: sha256}}: every file an export wrote


def refusal(folder: Path) -> str | None:
    """Why `folder` may not be replaced by an export, or None when it may: nothing there, an empty
    folder, or an earlier export of this command (its manifest names exactly the files there, each
    with the sha256 it still has)."""
    if not folder.exists() and not folder.is_symlink():
        return None
    if folder.is_symlink() or not folder.is_dir():
        return "is not a folder"
    entries = {p.name: p for p in folder.iterdir()}
    if not entries:
        return None
    if MANIFEST not in entries:
        return f"holds files this command did not write (it has no {MANIFEST})"
    try:
        recorded = read_json(folder / MANIFEST)["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None
    if not isinstance(recorded, dict) or not all(isinstance(v, str) for v in recorded.values()):
        return f"holds a {MANIFEST} that is not an export's list of files"
    if extra := sorted(set(entries) - set(recorded) - {MANIFEST}):
        return f"holds {extra[0]}, which no export wrote"
    if missing := sorted(set(recorded) - set(entries)):
        return f"lacks {missing[0]}, which the earlier export wrote"
    for name in sorted(recorded):
        p = entries[name]
        if p.is_symlink() or not p.is_file() or sha256_file(p) != recorded[name]:
            return f"holds {name} changed since it was exported (its sha256 differs from {MANIFEST})"
    return None


def check_target(out: Path) -> Path:
    """`out`, refused in one line unless an export may be written there (refusal)."""
    if why := refusal(out):
        raise LadderError(
            f"{out}: already exists and {why}; name a new path for the Hugging Face folder (or remove it first)"
        )
    return out


def write_manifest(folder: Path, size: str) -> None:
    """The marker a later export knows its own by: the sha256 of every file in the finished folder."""
    files = sorted(p for p in folder.iterdir() if p.name != MANIFEST and p.is_file())
    write_json(
        folder / MANIFEST,
        {"written_by": "ladder export-hf", "size": size, "sha256": {p.name: sha256_file(p) for p in files}},
    )


def hf_weights(model: GPT) -> dict[str, torch.Tensor]:
    """Llama weights; a tied lm_head is left out (transformers re-ties it, and safetensors refuses shared tensors)."""
    sd = model.hf_state_dict()
    if model.hf_config()["tie_word_embeddings"]:
        del sd["lm_head.weight"]
    return {k: v.detach().contiguous() for k, v in sd.items()}


def hf_config(model: GPT, eot: int) -> dict:
    c = model.hf_config()
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        **c,
        "rope_parameters": {"rope_type": "default", "rope_theta": c["rope_theta"]},  # 5.x spelling
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "torch_dtype": "float32",
    }


def generation_config(sampling: config.Eval, eot: int) -> dict:
    """`model.generate()`'s defaults: the eval stage's sampling settings, as `ladder generate` uses them."""
    special = {"bos_token_id": eot, "eos_token_id": eot, "pad_token_id": eot}
    if sampling.temperature == 0:
        return {**special, "do_sample": False, "max_new_tokens": sampling.max_new_tokens}
    knobs = {"temperature": sampling.temperature, "top_k": sampling.top_k, "top_p": sampling.top_p}
    return {
        **special,
        "do_sample": True,
        "max_new_tokens": sampling.max_new_tokens,
        **{k: v for k, v in knobs.items() if v is not None},
    }


def write_tokenizer(folder: Path, block_size: int) -> None:
    """tokenizer.json as trained, read by PreTrainedTokenizerFast with <|endoftext|> as bos, eos and pad."""
    tokens.load().save(str(folder / "tokenizer.json"))  # atomic: export()'s temporary folder
    special = {"bos_token": EOT, "eos_token": EOT, "pad_token": EOT}
    write_json(folder / "special_tokens_map.json", special)
    # No cleanup: it would turn " ." into "." and break decode(encode(text)) == text.
    write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            **special,
            "model_input_names": ["input_ids", "attention_mask"],
            "model_max_length": block_size,
            "clean_up_tokenization_spaces": False,
        },
    )


def data_card(params: config.Params) -> tuple[str, str]:
    """(licence id for the card's metadata, the card's section on the training data)."""
    if params.data.source == "embedded":
        text = need(paths.EMBEDDED_README, "embedded corpus README").read_text()
        if "## Licence and attribution" not in text:
            raise LadderError(f"{paths.EMBEDDED_README}: no '## Licence and attribution' section to quote")
        section = text.split("## Licence and attribution", 1)[1].split("\n## ", 1)[0].strip()
        return "cc-by-sa-3.0", (
            "The embedded corpus of English Wikipedia articles (data/embedded/README.md). "
            "The model is derived from it and keeps its licence:\n\n" + section
        )
    source = params.data.hf.name if params.data.source == "hf" else params.data.source
    return "other", (
        f"Trained on `{source}`. That corpus's licence governs this model: state it here, and set "
        "`license:` above, before sharing the model."
    )


def model_card(size: str, model: GPT, params: config.Params) -> str:
    cfg = model.config
    tied = model.hf_config()["tie_word_embeddings"]
    licence, data = data_card(params)
    train_json = paths.RunFiles(size).summary
    trained = read_json(train_json) if train_json.exists() else {}
    lines = [
        "---",
        f"license: {licence}",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [ladder, llama]",
        "---",
        "",
        f"# ladder {size}",
        "",
        f"A {model.num_params(non_embedding=False) / 1e6:.2f}M-parameter decoder-only transformer in the Llama "
        f"layout ({cfg.n_layer} layers, {cfg.n_head} heads, width {cfg.n_embd}, context {cfg.block_size} tokens, "
        f"byte-level BPE vocabulary of {cfg.vocab_size}, {'tied' if tied else 'untied'} embedding and output)"
        + (f", trained on {trained['tokens']:,} tokens" if trained else "")
        + " by the ladder pipeline.",
    ]
    if cfg.mup:
        lines += [
            "",
            f"Trained with μP (width multiplier {cfg.width_mult:g}); its attention scale and output "
            "multiplier are folded into `q_proj` and `lm_head`, so the standard Llama code runs it.",
        ]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        'tok = AutoTokenizer.from_pretrained("path/to/this/folder")',
        'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")',
        'ids = tok("The history of", return_tensors="pt").input_ids',
        "out = model.generate(ids, max_new_tokens=40, do_sample=True, top_k=50)",
        "print(tok.decode(out[0]))",
        "```",
    ]
    out = paths.RunFiles(size)
    if out.eval.exists() and out.provenance.exists():
        e, p = read_json(out.eval), read_json(out.provenance)
        lines += [
            "",
            "## Evaluation",
            "",
            f"On {p['val']['tokens_scored']:,} tokens of the held-out split of the training corpus:",
            "",
            "| metric | value |",
            "| --- | --- |",
            f"| loss (nats/token) | {e['val_loss']} |",
            f"| perplexity | {p['val']['perplexity']} |",
            f"| bits per byte | {e['val_bits_per_byte']} |",
            f"| bits per byte of a unigram model, for reference | {p['val']['unigram_bits_per_byte']} |",
        ]
        if e["cloze"] is not None:
            lines += [
                f"| next-sentence cloze accuracy ({p['cloze']['items']} items, chance {p['cloze']['chance']}) "
                f"| {e['cloze']} |"
            ]
    lines += [
        "",
        "In the ladder repository, `ladder lm-eval --size " + size + "` runs EleutherAI's "
        "lm-evaluation-harness on this folder, offline; `lm_eval --model hf --model_args "
        "pretrained=path/to/this/folder` does too, with tasks from the hub.",
    ]
    lines += ["", "## Training data and licence", "", data, ""]
    return "\n".join(lines)


def max_logit_diff(folder: Path, model: GPT, seed: int = 0) -> float:
    """Largest |logit difference| between `transformers` reading `folder` and `model`, on random tokens."""
    from transformers import AutoModelForCausalLM
    from transformers.utils.logging import disable_progress_bar

    disable_progress_bar()  # a bar for loading a few tensors is noise
    hf = AutoModelForCausalLM.from_pretrained(folder).eval()
    cfg = model.config
    x = torch.randint(0, cfg.vocab_size, (2, min(cfg.block_size, 64)), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return (hf(x).logits - model(x)[0]).abs().max().item()


def export(size: str, out: Path, params: config.Params) -> Path:
    check_target(out)
    model = load_trained(size, torch.device("cpu"))
    eot = tokens.load().token_to_id(EOT)
    with atomic(out) as (tmp,):
        tmp.mkdir()
        save_file(hf_weights(model), tmp / "model.safetensors", metadata={"format": "pt"})
        write_json(tmp / "config.json", hf_config(model, eot))
        write_json(tmp / "generation_config.json", generation_config(params.eval, eot))
        write_tokenizer(tmp, model.config.block_size)
        (tmp / "README.md").write_text(model_card(size, model, params))
        diff = max_logit_diff(tmp, model)
        if diff > TOLERANCE:
            raise LadderError(
                f"export of {size}: transformers' logits differ from ours by {diff:.2e} "
                f"(> {TOLERANCE}); {out} left as it was"
            )
        write_manifest(tmp, size)
    log.info("export-hf@%s: wrote %s (transformers reproduces our logits within %.1e)", size, out, diff)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", required=True, help="a trained size (reads results/<size>/)")
    p.add_argument("--out", type=Path, help="output folder (default: results/<size>/hf)")


def main(args) -> None:
    export(args.size, args.out or paths.RunFiles(args.size).hf, config.load(args.params))
