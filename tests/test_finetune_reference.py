"""Our LoRA step against transformers + peft, and the fast paths of the step against autograd.

benchmarks/finetune_speed.py times our LoRA fine-tune against transformers' Llama with peft's
adapters; these tests check that the two compute the same thing. Our adapters differ in one
way of laying them out: the fused q/k/v projection (and SwiGLU's gate/up) has one adapter,
its A shared by the parts, where peft gives q, k and v an A each. Starting peft's three A's
equal to our one, both models are the same function; our A's gradient is then the sum of
peft's three (the chain rule through a shared input), and B's rows are peft's B's.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from glassformer.interop.export import hf_model
from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.nn.cross_entropy import cross_entropy
from glassformer.nn.lora import LoRALinear, LoRAMatmul, add_lora

RANK, ALPHA = 4, 8.0


def llama_pair():
    """(our Llama-shaped GPT with LoRA, transformers' Llama with peft's LoRA), same weights
    and the same adapters (B random, so the update is part of the function)."""
    transformers = pytest.importorskip("transformers")
    import peft

    config = GPTConfig(
        vocab_size=97, block_size=32, n_layer=2, n_head=4, n_kv_head=2, n_embd=32,
        mlp_hidden=48, bias=False, pos_emb="rotary", norm="rmsnorm", norm_eps=1e-5,
        activation="swiglu", tie_weights=True, rope_theta=10000.0,
    )  # fmt: skip
    torch.manual_seed(0)
    ours = GPT(config)
    hf_config, weights = hf_model(ours)
    ref = transformers.LlamaForCausalLM(transformers.LlamaConfig(**hf_config))
    ref.load_state_dict(weights, strict=False)  # the tied head is the embedding
    add_lora(ours, RANK, ALPHA)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    lora = peft.LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=targets)
    ref = peft.get_peft_model(ref, lora)
    for p in ours.parameters():
        if p.requires_grad:
            nn.init.normal_(p, std=0.1)
    with torch.no_grad():
        for block, layer in zip(ours.blocks, layers(ref), strict=True):
            for ours_name, parts in adapted(layer).items():
                mine = block.get_submodule(ours_name)
                rows = mine.B.split([p.base_layer.out_features for p in parts])
                for part, b in zip(parts, rows, strict=True):
                    part.lora_A["default"].weight.copy_(mine.A)
                    part.lora_B["default"].weight.copy_(b)
    return ours.train(), ref.train()


def layers(ref):
    return ref.base_model.model.model.layers


def adapted(layer) -> dict:
    """Our adapted Linear's name in a block -> the peft Linears it stands for, in row order."""
    attn, mlp = layer.self_attn, layer.mlp
    return {
        "attn.qkv": [attn.q_proj, attn.k_proj, attn.v_proj],
        "attn.proj": [attn.o_proj],
        "mlp.fc": [mlp.gate_proj, mlp.up_proj],
        "mlp.proj": [mlp.down_proj],
    }


def step(ours, ref, precision: str):
    """One forward and backward of each on the same batch; the two losses."""
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 97, (3, 17), generator=gen)
    x, y = ids[:, :-1], ids[:, 1:].contiguous()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        ours_loss = ours(x, y)[1]
        ref_loss = ref(input_ids=x, labels=y, shift_labels=y).loss
    ours_loss.backward()
    ref_loss.backward()
    return ours_loss, ref_loss


def compare_gradients(ours, ref, close) -> None:
    for block, layer in zip(ours.blocks, layers(ref), strict=True):
        for ours_name, parts in adapted(layer).items():
            mine = block.get_submodule(ours_name)
            a_sum = sum(p.lora_A["default"].weight.grad for p in parts)  # the shared A
            b_rows = torch.cat([p.lora_B["default"].weight.grad for p in parts])
            close(mine.A.grad, a_sum)
            close(mine.B.grad, b_rows)


def test_lora_step_equals_transformers_and_peft_in_fp32():
    ours, ref = llama_pair()
    ours_loss, ref_loss = step(ours, ref, "fp32")
    torch.testing.assert_close(ours_loss, ref_loss, atol=1e-5, rtol=1e-5)

    def close(a, b):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)

    compare_gradients(ours, ref, close)
    # the frozen parts stay frozen on both sides: no gradient but the adapters'
    assert all(p.grad is None for p in ours.parameters() if not p.requires_grad)
    assert not ours.tok_emb.weight.requires_grad and ours.lm_head.weight is ours.tok_emb.weight


def test_lora_step_in_bf16_autocast_matches_within_bf16_rounding():
    """Under bf16 autocast both round differently (transformers attends in bf16, we in fp32;
    our update is added inside the base matmul): the same loss within 1%, gradients pointing
    the same way (cosine > 0.99)."""
    ours, ref = llama_pair()
    ours_loss, ref_loss = step(ours, ref, "bf16")
    torch.testing.assert_close(ours_loss, ref_loss, atol=0.0, rtol=1e-2)

    def close(a, b):
        assert F.cosine_similarity(a.flatten(), b.flatten(), dim=0) > 0.99

    compare_gradients(ours, ref, close)


# ---- the fast paths against autograd --------------------------------------------------------


def test_lora_matmul_gradients_equal_autograd_of_the_formula():
    """gradcheck in float64: x, A and B (and the frozen W, b get none)."""
    gen = torch.Generator().manual_seed(0)

    def rand(*shape, grad=True):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_(grad)

    x, A, B = rand(5, 6), rand(3, 6), rand(4, 3)
    weight, bias = rand(4, 6, grad=False), rand(4, grad=False)
    assert torch.autograd.gradcheck(lambda x, A, B: LoRAMatmul.apply(x, weight, bias, A, B, 0.7),
                                    (x, A, B))  # fmt: skip
    expected = x @ weight.t() + bias + 0.7 * (x @ A.t()) @ B.t()
    torch.testing.assert_close(LoRAMatmul.apply(x, weight, bias, A, B, 0.7), expected)


def test_lora_under_bf16_autocast_casts_the_frozen_weight_once_and_again_after_a_change():
    torch.manual_seed(0)
    lora = LoRALinear(nn.Linear(16, 12), rank=4, alpha=8.0)
    nn.init.normal_(lora.B)
    x = torch.randn(2, 5, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = lora.base(x) + (x @ lora.A.t() @ lora.B.t()) * 2.0  # autocast's own path
        y = lora(x)
        cast = lora._cast[1]
        assert y.dtype == torch.bfloat16 and y.shape == (2, 5, 12)
        torch.testing.assert_close(y.float(), expected.float(), atol=0.05, rtol=0.02)
        lora(x)
        assert lora._cast[1] is cast  # kept
        with torch.no_grad():
            lora.base.weight.mul_(2.0)  # a load or an edit changes it in place
        lora(x)
        assert torch.equal(lora._cast[1], lora.base.weight.bfloat16())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cross_entropy_equals_torch_in_loss_and_gradient(dtype):
    """Against F.cross_entropy of the fp32 logits, with ignored rows and more rows than one
    slice of nn/cross_entropy.py."""
    gen = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(37, 50, generator=gen)).to(dtype).requires_grad_()
    targets = torch.randint(0, 50, (37,), generator=gen)
    targets[::5] = -1
    loss = cross_entropy(logits, targets)
    loss.backward()
    ours = logits.grad.clone()
    logits.grad = None
    reference = F.cross_entropy(logits.float(), targets, ignore_index=-1)
    reference.backward()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, reference, atol=1e-6, rtol=1e-6)
    assert ours.dtype == dtype and not ours[::5].any()  # ignored rows get no gradient
    tol = 1e-7 if dtype == torch.float32 else 1e-4
    torch.testing.assert_close(ours, logits.grad, atol=tol, rtol=1e-2)
