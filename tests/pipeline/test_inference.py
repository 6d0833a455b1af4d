"""Inference tools on the `built` project: generation and the KV cache, sanity checks, the Hugging
Face export and attention maps. Outputs go to tmp_path; `built` is only read."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import pytest
import torch
import torch.nn.functional as F
from conftest import ENV, sh
from safetensors.torch import save_model

from ladder import cli
from ladder.data.tokens import EOT, decode_stream
from ladder.data.tokens import load as load_tokenizer
from ladder.nn.checkpoint import load_trained
from ladder.nn.model import GPT, GPTConfig, KVCache
from ladder.pipeline import config
from ladder.pipeline.files import LadderError, write_json
from ladder.tools.attention import attention_maps
from ladder.tools.export import export

CPU = torch.device("cpu")
ENV1 = {**ENV, "LADDER_THREADS": "1", "HF_HUB_OFFLINE": "1"}  # tiny models: a second thread only adds contention


@pytest.fixture
def at_built(built, monkeypatch):
    """Run in the built project, on one thread, restoring the thread count afterwards."""
    monkeypatch.chdir(built)
    monkeypatch.setenv("LADDER_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield built
    torch.set_num_threads(threads)


def greedy(model, ids, n, **kw):
    return torch.cat(list(model.generate(ids, n, temperature=0, **kw)), dim=1)


# ----------------------------------------------------------------------------- generation and the KV cache


def test_kv_cache_logits_match_full_forward(at_built):
    model = load_trained("tiny", CPU)
    idx = torch.randint(0, model.config.vocab_size, (2, 10), generator=torch.Generator().manual_seed(0))
    cache = KVCache(model.config.n_layer, model.config.block_size)
    # the three cached paths: prefill, a chunk after a prefix, then one token at a time
    first, _ = model(idx[:, :4], cache=cache, pos=0)
    second, _ = model(idx[:, 4:], cache=cache, pos=4)
    torch.testing.assert_close(torch.cat([first, second], 1), model(idx)[0], atol=1e-5, rtol=0)
    for pos in range(idx.size(1), idx.size(1) + 30):
        nxt = second[:, -1:].argmax(-1)
        idx = torch.cat([idx, nxt], 1)
        second, _ = model(nxt, cache=cache, pos=pos)
        torch.testing.assert_close(second[:, -1], model(idx)[0][:, -1], atol=1e-5, rtol=0)


def test_greedy_generation_is_deterministic_and_cache_independent(at_built):
    model = load_trained("tiny", CPU)
    ids = torch.tensor([load_tokenizer().encode("The history of").ids])
    n = model.config.block_size + 16  # past block_size the window slides and the cache is refilled
    a = greedy(model, ids, n)
    assert a.shape == (1, n)
    assert torch.equal(a, greedy(model, ids, n))
    assert torch.equal(a, greedy(model, ids, n, use_cache=False))


def test_sampling_follows_the_seed(at_built):
    model = load_trained("tiny", CPU)
    ids = torch.tensor([load_tokenizer().encode("The history of").ids])

    def sample(seed):
        gen = torch.Generator().manual_seed(seed)
        return torch.cat(list(model.generate(ids, 20, temperature=1.0, top_k=50, top_p=0.95, generator=gen)), 1)

    assert torch.equal(sample(1), sample(1))
    assert not torch.equal(sample(1), sample(2))


def test_decode_stream_never_splits_a_character(at_built):
    tok = load_tokenizer()
    text = "naïve café, 27 °C, € and 日本"
    ids = tok.encode(text).ids
    assert len(ids) > len(text)  # some characters do take several tokens here
    pieces = list(decode_stream(tok, ids))
    assert "".join(p for p, _ in pieces) == text
    assert sum(n for _, n in pieces) == len(ids)
    assert not any("\ufffd" in p for p, _ in pieces)


def test_generate_cli_streams_prompt_and_continuation(at_built):
    prompt = "The history of"
    out = sh(f"ladder generate --size tiny --prompt '{prompt}' --max-new-tokens 12 --temperature 0", at_built, env=ENV1)
    # the same greedy tokens, decoded at once, up to the end-of-text token
    model, tok = load_trained("tiny", CPU), load_tokenizer()
    new = greedy(model, torch.tensor([tok.encode(prompt).ids]), 12)[0].tolist()
    eot = tok.token_to_id(EOT)
    new = new[: new.index(eot)] if eot in new else new
    assert out.stdout == prompt + tok.decode(new) + "\n"
    assert len(out.stdout) > len(prompt) + 1


def test_generate_cli_prompts_file(built, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("The history of\n\nIn mathematics,\n")
    cmd = f"ladder generate --size tiny --prompts-file {prompts} --max-new-tokens 8 --temperature 0"
    out = sh(cmd, built, env=ENV1).stdout
    first, second = out.split("\n" + "-" * 40 + "\n")
    assert first.startswith("The history of") and second.startswith("In mathematics,")
    assert sh(cmd + " --no-cache", built, env=ENV1).stdout == out


def test_sanity_passes_on_tiny(at_built):
    # the shrunk model is 32 wide: Muon's steps, sized by sqrt(width), are smaller there than at tiny's 128
    # (which overfits in the default 150 steps), so it gets twice the steps
    out = sh("ladder sanity --size tiny --steps 300", at_built, env=ENV1).stdout
    assert out.count("PASS") == 3, out
    assert f"ln({load_tokenizer().get_vocab_size()})" in out


def test_sanity_fails_in_one_line_when_a_parameter_gets_no_gradient(at_built, monkeypatch, capsys):
    from ladder.nn import model as model_py

    # a classic bug: a layer built but left out of the forward pass
    monkeypatch.setattr(model_py.MLP, "forward", lambda self, x: self.down_proj(F.silu(self.gate_proj(x))))
    assert cli.main(["sanity", "--size", "tiny", "--steps", "3"]) == 1
    out, err = capsys.readouterr()
    assert "gradient flow      FAIL" in out and "layers.0.mlp.up_proj.weight" in out
    assert err.count("\n") == 1 and err.startswith("ladder sanity: error: sanity@tiny:") and "gradient flow" in err


# ----------------------------------------------------------------------------- export to Hugging Face


def hf_logits(folder, idx):
    from transformers import AutoModelForCausalLM

    with torch.no_grad():
        return AutoModelForCausalLM.from_pretrained(folder).eval()(idx).logits


def test_export_hf_round_trip(at_built, tmp_path):
    from transformers import AutoTokenizer

    folder = tmp_path / "hf"
    sh(f"ladder export-hf --size tiny --out {folder}", at_built, env=ENV1)  # loads the folder back, offline
    assert {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
    } <= {p.name for p in folder.iterdir()}
    card = (folder / "README.md").read_text()
    assert "license: cc-by-sa-3.0" in card and "bits per byte" in card and "cloze" in card

    model, tok = load_trained("tiny", CPU), load_tokenizer()
    idx = torch.randint(
        0, model.config.vocab_size, (2, model.config.block_size), generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        assert (hf_logits(folder, idx) - model(idx)[0]).abs().max() < 1e-4

    hf_tok = AutoTokenizer.from_pretrained(folder)
    text = "The history of naïve café, 1934.\n\nNext line"
    assert hf_tok(text).input_ids == tok.encode(text).ids
    assert hf_tok.decode(hf_tok(text).input_ids) == text
    assert hf_tok.eos_token == hf_tok.bos_token == hf_tok.pad_token == EOT


def test_export_hf_generates_with_transformers_alone(at_built, tmp_path):
    """What a transformers user does first: tokenize, call the model, generate with the shipped defaults."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    folder = tmp_path / "hf"
    sh(f"ladder export-hf --size tiny --out {folder}", at_built, env=ENV1)
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder).eval()
    batch = tok(["The history of", "In"], return_tensors="pt", padding=True)
    assert set(batch) == {"input_ids", "attention_mask"}  # no token_type_ids, which Llama refuses
    with torch.no_grad():
        assert model(**batch).logits.shape[:2] == batch.input_ids.shape
    sampling = config.load(at_built / "params.yaml").eval
    gen = GenerationConfig.from_pretrained(folder)
    assert (gen.do_sample, gen.temperature, gen.top_k, gen.top_p, gen.max_new_tokens) == (
        True,
        sampling.temperature,
        sampling.top_k,
        sampling.top_p,
        sampling.max_new_tokens,
    )
    assert gen.pad_token_id == gen.eos_token_id == tok.convert_tokens_to_ids(EOT)
    prompt = tok("The history of", return_tensors="pt")
    torch.manual_seed(0)
    out = model.generate(**prompt)  # generation_config.json's defaults: sampled, eval.max_new_tokens at most
    n = prompt.input_ids.shape[1]
    assert n < out.shape[1] <= n + sampling.max_new_tokens


@pytest.fixture
def mup_project(built, tmp_path, monkeypatch):
    """A project folder holding the built tokenizer and a results/<size> to fill in."""
    for rel in ("data/tokenizer/tokenizer.json", "data/embedded/README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(built / rel, tmp_path / rel)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def save_random(project, size: str, cfg: GPTConfig) -> GPT:
    """A GPT with O(1) random weights (a fresh init's attention is nearly uniform and its logits tiny,
    which would hide a wrong scale), saved as results/<size>."""
    torch.manual_seed(0)
    model = GPT(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) / math.sqrt(p.size(-1)) + (1.0 if p.dim() == 1 else 0.0))
    (project / "results" / size).mkdir(parents=True)
    save_model(model, str(project / "results" / size / "model.safetensors"))
    write_json(project / "results" / size / "config.json", dataclasses.asdict(cfg))
    return model.eval()


@pytest.mark.parametrize("tie", [True, False])
def test_export_hf_folds_mup(built, mup_project, tie):
    cfg = GPTConfig(
        vocab_size=512, block_size=32, n_layer=2, n_head=2, n_embd=64, mup=True, mup_base_width=16, tie_weights=tie
    )
    assert cfg.width_mult == 4 and cfg.attn_scale != 1 / math.sqrt(cfg.head_dim)
    model = save_random(mup_project, "wide", cfg)
    folder = export("wide", mup_project / "hf", config.load(built / "params.yaml"))
    assert json.loads((folder / "config.json").read_text())["tie_word_embeddings"] is False  # 1/m unties lm_head
    idx = torch.randint(0, 512, (2, 32), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = model(idx)[0]
    assert (hf_logits(folder, idx) - ours).abs().max() < 1e-4
    assert "μP" in (folder / "README.md").read_text()


@pytest.mark.parametrize("skip", ["q_proj", "lm_head"])
def test_export_hf_refuses_a_folder_that_does_not_reproduce_us(built, mup_project, monkeypatch, skip):
    from ladder.tools import export as export_py

    save_random(
        mup_project,
        "wide",
        GPTConfig(vocab_size=512, block_size=32, n_layer=1, n_head=2, n_embd=64, mup=True, mup_base_width=16),
    )
    fold = export_py.hf_weights

    def unfolded(model):  # undo one of the two μP folds
        sd = fold(model)
        cfg = model.config
        undo = cfg.width_mult if skip == "lm_head" else 1 / (cfg.attn_scale * math.sqrt(cfg.head_dim))
        for k in sd:
            if skip in k:
                sd[k] = sd[k] * undo
        return sd

    monkeypatch.setattr(export_py, "hf_weights", unfolded)
    with pytest.raises(LadderError, match="differ from ours"):
        export("wide", mup_project / "hf", config.load(built / "params.yaml"))
    assert not (mup_project / "hf").exists()


# ----------------------------------------------------------------------------- attention maps


def test_attention_maps_are_the_models_attention(at_built):
    model = load_trained("tiny", CPU)
    idx = torch.tensor([load_tokenizer().encode("The history of the world").ids])
    maps = attention_maps(model, idx)  # (n_layer, B, nh, T, T)
    T = idx.size(1)
    assert maps.shape == (model.config.n_layer, 1, model.config.n_head, T, T)
    torch.testing.assert_close(maps.sum(-1), torch.ones(maps.shape[:-1]))
    assert not maps.triu(1).any()  # causal
    # probabilities @ values, through o_proj, is what the attention module returned
    attn = model.layers[0].self_attn
    seen = {}
    hook = attn.register_forward_hook(lambda m, args, out: seen.update(x=args[0], out=out))
    with torch.no_grad():
        model(idx)
    hook.remove()
    v = attn.v_proj(seen["x"]).view(1, T, attn.n_head, attn.head_dim).transpose(1, 2)
    y = (maps[0] @ v).transpose(1, 2).reshape(1, T, -1)
    torch.testing.assert_close(attn.o_proj(y), seen["out"], atol=1e-5, rtol=1e-4)


def test_attention_cli_writes_a_png(built, tmp_path):
    png = tmp_path / "attention.png"
    sh(f"ladder attention --size tiny --prompt 'The history of the world' --out {png}", built, env=ENV1)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
