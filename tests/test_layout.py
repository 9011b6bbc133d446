"""nn/layout.py: storing the wide Linear weights transposed changes strides, never results."""

import copy

import torch
from test_decode_fast import _llama, greedy_reference, relative_gap

from glassformer.checkpoint import load, save
from glassformer.generate import GenerationOptions, generate_tokens
from glassformer.nn.layout import for_one_sequence
from glassformer.nn.quantized import Int4Linear, quantized_copy
from glassformer.tokenizers.char import CharTokenizer


def test_only_wider_than_tall_weights_are_restrided_values_unchanged():
    model = _llama()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n = for_one_sequence(model)
    # per block: qkv (48 -> 80) and the SwiGLU gate|up (48 -> 192); plus the tied head (48 -> 97)
    assert n == 3 * 2 + 1
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            w = module.weight
            wide = module.out_features > module.in_features
            assert w.stride() == ((1, w.size(0)) if wide else (w.size(1), 1)), name
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.lm_head.weight is model.tok_emb.weight  # still tied
    assert for_one_sequence(model) == 0  # idempotent


def test_greedy_tokens_and_logits_unchanged():
    idx = torch.tensor([[5, 17, 3, 42, 8, 1]])
    ref = _llama()
    model = copy.deepcopy(ref)
    for_one_sequence(model)
    opts = GenerationOptions(max_new_tokens=20, stop_ids=())
    assert torch.equal(generate_tokens(model, idx, opts), generate_tokens(ref, idx, opts))
    ids, logits = greedy_reference(ref, idx, 8)
    ids2, logits2 = greedy_reference(model, idx, 8)
    assert torch.equal(ids, ids2)
    assert relative_gap(logits2, logits) <= 1e-5


def test_restrided_model_saves_loads_and_quantizes(tmp_path):
    model = _llama()
    for_one_sequence(model)
    tok = CharTokenizer.train("".join(chr(32 + i) for i in range(97)))
    save(tmp_path / "run", model, tok)
    loaded, _ = load(tmp_path / "run")
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True)
    )
    idx = torch.tensor([[1, 2, 3]])
    opts = GenerationOptions(max_new_tokens=6, stop_ids=())
    for dtype in ("int8", "int4"):  # the kernels read row-major weights: same result
        q_ref = quantized_copy(_llama(), dtype)
        q = quantized_copy(model, dtype)
        assert torch.equal(generate_tokens(q, idx, opts), generate_tokens(q_ref, idx, opts))


def test_int4_from_a_restrided_weight_equals_from_the_stored_one():
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 128, bias=False)  # wide: restrided; fits int4 groups of 32
    ref = Int4Linear.from_weight(lin.weight.detach(), None, torch.bfloat16, 32)
    for_one_sequence(lin)
    got = Int4Linear.from_weight(lin.weight.detach(), None, torch.bfloat16, 32)
    x = torch.randn(3, 64)
    assert torch.equal(got(x), ref(x))


def test_weights_off_the_cpu_are_left_as_they_are():
    lin = torch.nn.Linear(4, 8, device="meta")  # the measurement is of the CPU kernels only
    assert for_one_sequence(lin) == 0
    assert lin.weight.stride() == (4, 1)
