"""Model tests: small shapes, fp32 on CPU, each well under a second or two."""

import dataclasses
import json
import math

import pytest
import torch

from ladder.nn.model import GPT, GPTConfig, KVCache, apply_rope, rope_tables, sample_next
from ladder.tools.generate import cache_speedup

V = 97


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: one thread is as fast, and a busy machine's other processes can't
    turn OpenMP's spin-waiting into 100x slowdowns (seen: 0.2 s -> 28 s for a generate test)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(**kw) -> GPTConfig:
    base = dict(vocab_size=V, block_size=32, n_layer=2, n_head=4, n_embd=64)
    return GPTConfig(**{**base, **kw})


def make(seed=0, **kw) -> GPT:
    torch.manual_seed(seed)
    return GPT(tiny(**kw))


def tokens(B=2, T=12, seed=1):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("mup", [False, True])
def test_shapes_and_initial_loss(mup, tie):
    model = make(mup=mup, tie_weights=tie, n_embd=128 if mup else 64)
    x = tokens()
    logits, loss = model(x)
    assert logits.shape == (2, 12, V) and loss is None
    with torch.no_grad():  # training (gradients on) takes the fused loss, which keeps no logits
        logits, loss = model(x, tokens(seed=2))  # targets != inputs: tied weights favour repeating
    assert logits.shape == (2, 12, V)
    # Tied: each position's own input token gets logit ~ init_std * n_embd / m (the residual stream
    # is mostly that token's embedding), which adds ~log(1 + (e^2.56 - 1) / V) ~ 0.12 here.
    assert loss.shape == () and abs(loss.item() - math.log(V)) < (0.2 if tie else 0.1)


def test_mup_loss_at_init_is_ln_vocab_at_every_width():
    for width in (128, 256, 512):  # m >= 1 (below base width the multiplier 1/m exceeds 1)
        model = make(mup=True, n_embd=width)
        _, loss = model(tokens(), tokens(seed=2))
        assert abs(loss.item() - math.log(V)) < 0.05, width


def test_ignore_index():
    model = make()
    x, y = tokens(), tokens(seed=2)
    y_masked = y.clone()
    y_masked[:, ::2] = -1
    with torch.no_grad():
        logits, plain = model(x, y_masked)
    _, fused = model(x, y_masked)
    ref = torch.nn.functional.cross_entropy(logits[:, 1::2].reshape(-1, V), y[:, 1::2].reshape(-1))
    torch.testing.assert_close(plain, ref)
    torch.testing.assert_close(fused, ref)


def test_config_is_plain_json_and_derived_values_follow_replace():
    cfg = tiny(mup=True)
    again = GPTConfig(**json.loads(json.dumps(dataclasses.asdict(cfg))))
    assert again == cfg
    assert cfg.ffn_hidden % 64 == 0 and abs(cfg.ffn_hidden - 8 * 64 / 3) <= 32
    assert tiny(n_embd=768).ffn_hidden == 2048
    assert dataclasses.replace(cfg, n_embd=256).ffn_hidden == 64 * round(8 * 256 / 3 / 64)
    assert tiny(mlp_hidden=100).ffn_hidden == 100
    with pytest.raises(ValueError):
        tiny(n_embd=65)


def test_rope_matches_hf_rotate_half_convention():
    # HF Llama: q*cos + rotate_half(q)*sin with rotate_half(x) = cat(-x[d/2:], x[:d/2]) and
    # cos = cat(freqs, freqs).  Check position p rotates the pair (i, i+d/2) by p * theta^(-2i/d).
    hd, theta = 8, 10000.0
    cos, sin = rope_tables(hd, 16, theta)
    x = torch.randn(1, 1, 16, hd)
    y = apply_rope(x, cos, sin)
    p, i = 5, 1
    ang = p * theta ** (-2 * i / hd)
    a, b = x[0, 0, p, i], x[0, 0, p, i + hd // 2]
    torch.testing.assert_close(y[0, 0, p, i], a * math.cos(ang) - b * math.sin(ang))
    torch.testing.assert_close(y[0, 0, p, i + hd // 2], b * math.cos(ang) + a * math.sin(ang))
    # relative-position property: <R_m q, R_n k> depends on m - n only
    q, k = torch.randn(hd), torch.randn(hd)
    rq = apply_rope(q.expand(1, 1, 16, hd), cos, sin)[0, 0]
    rk = apply_rope(k.expand(1, 1, 16, hd), cos, sin)[0, 0]
    torch.testing.assert_close(rq[7] @ rk[3], rq[10] @ rk[6])


def test_causal():
    model = make()
    x = tokens()
    x2 = x.clone()
    x2[:, 8:] = (x2[:, 8:] + 1) % V
    torch.testing.assert_close(model(x)[0][:, :8], model(x2)[0][:, :8])


@pytest.mark.parametrize("mup", [False, True])
def test_kv_cache_matches_full_forward(mup):
    torch.set_default_dtype(torch.float32)
    model = make(mup=mup, n_embd=128).eval()
    x = tokens(B=3, T=20)
    full, _ = model(x)
    # prefill 7, then a chunk of 5 after a prefix (explicit mask), then one token at a time
    cache = KVCache(model.config.n_layer, 20)
    parts = [model(x[:, :7], cache=cache, pos=0)[0], model(x[:, 7:12], cache=cache, pos=7)[0]]
    parts += [model(x[:, t : t + 1], cache=cache, pos=t)[0] for t in range(12, 20)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


def test_kv_cache_bounds():
    model = make()
    cache = KVCache(model.config.n_layer, 8)
    with pytest.raises(ValueError):
        model(tokens(T=9), cache=cache)
    with pytest.raises(ValueError):
        model(tokens(T=33))  # past block_size


@pytest.mark.parametrize("n_new", [6, 40])  # 40: prompt + new tokens run past block_size=32, window slides
def test_generate_cached_equals_uncached_greedy(n_new):
    model = make().eval()
    prompt = tokens(B=2, T=5)
    a = torch.cat(list(model.generate(prompt, n_new, temperature=0, use_cache=True)), dim=1)
    b = torch.cat(list(model.generate(prompt, n_new, temperature=0, use_cache=False)), dim=1)
    assert a.shape == (2, n_new)
    assert torch.equal(a, b)
    # and greedy is the argmax of the full forward at every step
    seq = torch.cat((prompt, a), dim=1)
    for t in range(prompt.size(1), min(seq.size(1), model.config.block_size)):
        assert torch.equal(model(seq[:, :t])[0][:, -1].argmax(-1), seq[:, t])


def test_generate_streams_and_is_deterministic():
    model = make().eval()
    prompt = tokens(B=2, T=4)
    gen = model.generate(prompt, 3, temperature=0)
    first = next(gen)
    assert first.shape == (2, 1) and first.dtype == torch.long
    g1 = torch.cat(list(model.generate(prompt, 8, temperature=0)), 1)
    g2 = torch.cat(list(model.generate(prompt, 8, temperature=0)), 1)
    assert torch.equal(g1, g2)
    # sampling with a seeded generator is reproducible, with or without the cache
    s = [
        torch.cat(
            list(
                model.generate(
                    prompt,
                    8,
                    temperature=0.8,
                    top_k=20,
                    top_p=0.9,
                    use_cache=c,
                    generator=torch.Generator().manual_seed(3),
                )
            ),
            1,
        )
        for c in (True, False)
    ]
    assert torch.equal(s[0], s[1])


def test_sample_next_filters():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0]])
    g = torch.Generator().manual_seed(0)
    assert sample_next(logits, temperature=0).item() == 0
    draws = {sample_next(logits, top_k=2, generator=g).item() for _ in range(200)}
    assert draws == {0, 1}
    # softmax mass: 0.64, 0.23, 0.09, ... -> top_p=0.8 keeps tokens 0 and 1
    draws = {sample_next(logits, top_p=0.8, generator=g).item() for _ in range(200)}
    assert draws == {0, 1}
    assert {sample_next(logits, top_p=0.1, generator=g).item() for _ in range(50)} == {0}


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("mup", [False, True])
def test_param_groups_cover_every_parameter_once(mup, tie):
    model = make(mup=mup, tie_weights=tie, n_embd=256)
    groups = model.param_groups(weight_decay=0.1)
    seen = [id(p) for g in groups for p in g["params"]]
    assert len(seen) == len(set(seen))
    assert set(seen) == {id(p) for p in model.parameters()}
    for g in groups:
        assert g["lr_scale"] > 0
        if g["weight_decay"]:
            assert all(p.dim() == 2 for p in g["params"])
    opt = torch.optim.AdamW(groups, lr=1e-3)  # the trainer's usage
    assert len(opt.param_groups) == len(groups)


def test_mup_lr_scale_values():
    scales = {g["name"]: g["lr_scale"] for g in make(mup=True, n_embd=512, mup_base_width=128).param_groups(0.1)}
    assert scales == {"hidden": 0.25, "lm_head": 1.0, "no_decay": 1.0}
    scales = {g["name"]: g["lr_scale"] for g in make(mup=False, n_embd=512).param_groups(0.1)}
    assert scales == {"hidden": 1.0, "lm_head": 1.0, "no_decay": 1.0}


def test_mup_equals_sp_at_base_width():
    sp, mup = make(seed=7, n_embd=128), make(seed=7, n_embd=128, mup=True, mup_base_width=128)
    for (n1, p1), (n2, p2) in zip(sp.state_dict().items(), mup.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1
    assert mup.config.attn_scale == pytest.approx(sp.config.attn_scale)
    x = tokens()
    torch.testing.assert_close(sp(x)[0], mup(x)[0])


def test_muon_lr_scale_and_independent_weight_decay():
    """Muon's orthogonal update is sized by sqrt(max(fan_out, fan_in)): μP scales its lr by 1/sqrt(m),
    and under μP the hidden decay is divided by the lr scale, so lr x decay stays the base model's."""
    for optimizer, scale in (("adamw", 0.25), ("muon", 0.5)):
        groups = {g["name"]: g for g in make(mup=True, n_embd=512, mup_base_width=128).param_groups(0.1, optimizer)}
        assert groups["hidden"]["lr_scale"] == scale
        assert groups["hidden"]["lr_scale"] * groups["hidden"]["weight_decay"] == pytest.approx(0.1)


def test_completep_equals_plain_model_at_base_depth_and_scales_branches_beyond():
    plain, same = make(seed=3), make(seed=3, completep=True, mup_base_depth=2)
    for (n1, p1), (n2, p2) in zip(plain.state_dict().items(), same.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1
    x = tokens()
    assert torch.equal(plain(x)[0], same(x)[0])
    deep = make(seed=3, n_layer=8, completep=True, mup_base_depth=2)  # m_L = 4
    assert deep.config.depth_mult == 4 and all(b.branch_scale == 0.25 for b in deep.layers)
    # the residual projections keep the base depth's init: the multiplier does the depth scaling
    assert deep.layers[0].self_attn.o_proj.weight.std().item() == pytest.approx(0.02 / 2, rel=0.05)


def test_mup_init_and_scales_at_4x_width():
    std = 0.02
    model = make(n_embd=512, mup=True, mup_base_width=128)  # m = 4, head_dim 128 vs 32 at base
    cfg = model.config
    a = model.layers[0].self_attn
    assert a.q_proj.weight.std().item() == pytest.approx(std / 2, rel=0.05)
    assert a.o_proj.weight.std().item() == pytest.approx(std / 2 / math.sqrt(2 * cfg.n_layer), rel=0.05)
    assert model.embed_tokens.weight.std().item() == pytest.approx(std, rel=0.05)
    assert model.lm_head.weight.std().item() == pytest.approx(std, rel=0.05)
    assert cfg.attn_scale == pytest.approx(math.sqrt(32) / 128)
    sp = make(n_embd=512)
    assert sp.layers[0].self_attn.q_proj.weight.std().item() == pytest.approx(std, rel=0.05)


def test_mup_output_multiplier():
    model = make(n_embd=256, mup=True, mup_base_width=64)  # m = 4
    x = tokens()
    h = model.embed_tokens(x)
    cos, sin = model.rope_cos[:12], model.rope_sin[:12]
    for block in model.layers:
        h = block(h, cos, sin)
    torch.testing.assert_close(model(x)[0], model.lm_head(model.norm(h)) / 4)


def test_num_params_and_flops():
    m = make()
    C, L, H = 64, 2, m.config.ffn_hidden
    per_layer = 4 * C * C + 3 * C * H + 2 * C
    assert m.num_params(non_embedding=False) == L * per_layer + C + 2 * V * C
    assert m.num_params(non_embedding=True) == L * per_layer + C + V * C
    t = make(tie_weights=True)
    assert t.num_params(non_embedding=False) == L * per_layer + C + V * C
    n_matmul = L * (4 * C * C + 3 * C * H) + V * C
    for model in (m, t):  # tied or not, lm_head is one matmul per token
        assert model.flops_per_token(32) == 6 * n_matmul + 12 * L * C * 32
    # GPT-2 small shapes: ~124M matmul weights, the N nanoGPT's MFU uses
    small = GPTConfig(vocab_size=50304, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    with torch.device("meta"):  # shapes only, no memory, no init cost
        big = GPT(small)
    n = (big.flops_per_token(1024) - 12 * 12 * 768 * 1024) / 6
    assert 123e6 < n < 125e6


def test_hf_state_dict_names():
    keys = set(make().hf_state_dict())
    assert "model.embed_tokens.weight" in keys and "lm_head.weight" in keys and "model.norm.weight" in keys
    for k in (
        "input_layernorm",
        "post_attention_layernorm",
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.down_proj",
    ):
        assert f"model.layers.1.{k}.weight" in keys
    assert not any("rope" in k for k in keys)


@pytest.mark.parametrize(
    "mup,tie,completep",
    [(False, False, False), (False, True, False), (True, False, False), (True, True, False), (True, True, True)],
)
def test_hf_llama_export_gives_same_logits(mup, tie, completep):
    transformers = pytest.importorskip("transformers")
    model = make(
        mup=mup, tie_weights=tie, n_embd=256, mup_base_width=64, rope_theta=500.0, completep=completep, mup_base_depth=1
    ).eval()  # n_layer 2: m_L = 2
    with torch.no_grad():  # move the norm gains off 1 so a missed/misnamed norm would show
        for _, p in model.named_parameters():
            if p.dim() == 1:
                p.mul_(1 + 0.3 * torch.randn_like(p))
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**model.hf_config())).eval()
    missing, unexpected = hf.load_state_dict(model.hf_state_dict(), strict=False)
    assert not unexpected and all("rotary" in k for k in missing)
    x = tokens(T=model.config.block_size)
    with torch.no_grad():
        torch.testing.assert_close(hf(x).logits, model(x)[0], atol=2e-5, rtol=1e-4)


def test_activation_checkpointing_same_loss_and_grads():
    x, y = tokens(), tokens(seed=2)
    a, b = make(seed=3), make(seed=3, checkpoint_activations=True)
    la, lb = a(x, y)[1], b(x, y)[1]
    la.backward()
    lb.backward()
    torch.testing.assert_close(la, lb)
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=n)


def test_tied_weights_share_storage_and_grad():
    m = make(tie_weights=True)
    assert m.lm_head.weight is m.embed_tokens.weight
    m(tokens(), tokens(seed=2))[1].backward()
    assert m.embed_tokens.weight.grad is not None


def test_traces_without_graph_breaks():
    """torch.compile(fullgraph=True) fails on any graph break; the eager backend keeps it quick."""
    torch._dynamo.reset()
    model = make(checkpoint_activations=True)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    _, loss = compiled(tokens(), tokens(seed=2))
    loss.backward()
    torch._dynamo.reset()


@pytest.mark.parametrize("fp32_residual", [False, True])
def test_residual_stream_dtype_under_bf16_autocast(fp32_residual):
    """bf16 autocast carries the residual stream in bf16 unless fp32_residual; fp32 runs are untouched."""
    model = make(seed=3, fp32_residual=fp32_residual)
    seen = []
    for block in model.layers:
        block.register_forward_hook(lambda mod, inp, out: seen.append((inp[0].dtype, out.dtype)))
    x, y = tokens(), tokens(seed=2)
    ref = model(x, y)[1]
    assert seen == [(torch.float32, torch.float32)] * 2
    seen.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = torch.compile(model, backend="eager", fullgraph=True)(x, y)[1]
    want = torch.float32 if fp32_residual else torch.bfloat16
    assert seen == [(want, want)] * 2
    assert abs(loss.item() - ref.item()) < 0.02  # bf16 rounding, not a different model
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())
    torch._dynamo.reset()


def test_cache_speedup_on_a_long_generation():
    """256 new tokens after 16, within a 320-token context: the cache does O(T) work a step, not O(T^2)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=512, block_size=320, n_layer=2, n_head=2, n_embd=64)).eval()
        ids = torch.randint(0, 512, (1, 16), generator=torch.Generator().manual_seed(0))
        r = cache_speedup(model, ids, 256)
    finally:
        torch.set_num_threads(threads)
    print(
        f"KV cache: {r['cached_tokens_per_s']:.0f} tokens/s vs {r['uncached_tokens_per_s']:.0f} without, "
        f"{r['speedup']:.2f}x ({r['new_tokens']} new tokens after {r['prompt_tokens']})"
    )
    assert r["same_tokens"]
    assert r["speedup"] >= 1.0


# ----------------------------------------------------------------------------- sanity
