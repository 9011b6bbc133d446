"""GGUF files written here (tiny random Llamas): every block type we read, and bad files.

The tiny model stores each weight in another format (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K,
Q5_K, Q6_K); our logits must equal transformers' Llama loaded from the same file.
"""

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from gguf.quants import quantize

from glassformer.errors import UserError
from glassformer.interop.gguf import load_gguf, unpermute_rotary
from glassformer.tokenizers.formats import bytes_to_unicode

C, HEADS, KV_HEADS, FFN, LAYERS = 256, 4, 2, 512, 2
BYTES = [bytes_to_unicode()[b] for b in range(256)]
TOKENS = ["<|endoftext|>", *BYTES, "Ġt", "he", "Ġthe"]
MERGES = ["Ġ t", "h e", "Ġt he"]
V = len(TOKENS)

# K-quant blocks: random bytes with the fp16 scale fields set small (byte offsets in a block)
K_BLOCKS = {Q.Q4_K: (144, [0, 2]), Q.Q5_K: (176, [0, 2]), Q.Q6_K: (210, [208])}


def encoded(w: np.ndarray, qtype: Q, rng: np.random.Generator) -> np.ndarray:
    """`w` (rows, cols) in the block format `qtype`, as the bytes GGUF stores."""
    if qtype == Q.F32:
        return w.astype(np.float32)
    if qtype == Q.F16:
        return w.astype(np.float16)
    if qtype in K_BLOCKS:
        size, scales = K_BLOCKS[qtype]
        blocks = rng.integers(0, 256, (w.shape[0], w.shape[1] // 256, size), dtype=np.uint8)
        for offset in scales:
            blocks[..., offset : offset + 2] = np.frombuffer(np.float16(2e-4).tobytes(), np.uint8)
        return blocks.reshape(w.shape[0], -1)
    return quantize(w.astype(np.float32), qtype)


def write_llama(path, types: dict[str, Q] | None = None, corrupt_metadata: dict | None = None):
    """A 2-layer random Llama (untied head) with a byte-level vocabulary; `types` overrides
    the storage format of single tensors (default F32)."""
    rng = np.random.default_rng(0)
    types = types or {}
    w = GGUFWriter(str(path), "llama")
    meta = {
        "block_count": LAYERS,
        "context_length": 128,
        "embedding_length": C,
        "feed_forward_length": FFN,
        "head_count": HEADS,
        "head_count_kv": KV_HEADS,
    }
    meta |= corrupt_metadata or {}
    w.add_block_count(meta["block_count"])
    w.add_context_length(meta["context_length"])
    w.add_embedding_length(meta["embedding_length"])
    w.add_feed_forward_length(meta["feed_forward_length"])
    w.add_head_count(meta["head_count"])
    w.add_head_count_kv(meta["head_count_kv"])
    w.add_rope_freq_base(50000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(V)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(TOKENS)
    w.add_token_types([3] + [1] * (V - 1))
    w.add_token_merges(MERGES)
    w.add_eos_token_id(0)
    shapes = {"token_embd.weight": (V, C), "output.weight": (V, C), "output_norm.weight": (C,)}
    for i in range(LAYERS):
        hs = C // HEADS
        shapes |= {
            f"blk.{i}.attn_norm.weight": (C,),
            f"blk.{i}.ffn_norm.weight": (C,),
            f"blk.{i}.attn_q.weight": (C, C),
            f"blk.{i}.attn_k.weight": (KV_HEADS * hs, C),
            f"blk.{i}.attn_v.weight": (KV_HEADS * hs, C),
            f"blk.{i}.attn_output.weight": (C, C),
            f"blk.{i}.ffn_gate.weight": (FFN, C),
            f"blk.{i}.ffn_up.weight": (FFN, C),
            f"blk.{i}.ffn_down.weight": (C, FFN),
        }
    for name, shape in shapes.items():
        if len(shape) == 1:
            w.add_tensor(name, (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32))
            continue
        qtype = types.get(name, Q.F32)
        data = encoded(rng.standard_normal(shape) / np.sqrt(shape[1]), qtype, rng)
        w.add_tensor(name, data, raw_dtype=None if qtype in (Q.F32, Q.F16) else qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


EVERY_TYPE = {
    "token_embd.weight": Q.Q8_0,
    "output.weight": Q.Q6_K,
    "blk.0.attn_q.weight": Q.F16,
    "blk.0.attn_k.weight": Q.BF16,
    "blk.0.attn_v.weight": Q.Q8_0,
    "blk.0.attn_output.weight": Q.Q4_0,
    "blk.0.ffn_gate.weight": Q.Q4_1,
    "blk.0.ffn_up.weight": Q.Q4_K,
    "blk.0.ffn_down.weight": Q.Q5_K,
    "blk.1.attn_q.weight": Q.Q4_K,
    "blk.1.attn_k.weight": Q.Q6_K,
}


def test_every_block_type_equals_reference(tmp_path):
    transformers = pytest.importorskip("transformers")
    path = write_llama(tmp_path / "tiny.gguf", EVERY_TYPE)
    model, tokenizer = load_gguf(path)
    assert not model.config.tie_weights and model.config.kv_heads == KV_HEADS
    ref = transformers.AutoModelForCausalLM.from_pretrained(
        tmp_path, gguf_file="tiny.gguf", dtype=torch.float32
    ).eval()
    idx = torch.tensor([tokenizer.encode(" the then other thesis")])
    assert idx.size(1) < 20 and 258 in idx[0]  # "Ġthe" merged
    with torch.no_grad():
        delta = (model(idx)[0] - ref(idx).logits).abs().max().item()
    assert delta < 1e-4


def test_unpermute_rotary_undoes_llama_cpp():
    """llama.cpp's `permute` (convert_hf_to_gguf.py) followed by ours is the identity."""
    n_head, hs, cols = 3, 8, 5
    w = torch.randn(n_head * hs, cols)
    llama_cpp = w.reshape(n_head, 2, hs // 2, cols).swapaxes(1, 2).reshape(w.shape)
    assert torch.equal(unpermute_rotary(llama_cpp, n_head), w)


def test_unsupported_type_is_named(tmp_path):
    path = write_llama(tmp_path / "q5.gguf", {"blk.1.ffn_up.weight": Q.Q5_0})
    with pytest.raises(UserError, match=r"blk\.1\.ffn_up\.weight is stored as Q5_0") as e:
        load_gguf(path)
    assert str(e.value).count(". ") == 0 and str(e.value).endswith(".")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[: len(b) // 2], "truncated or corrupted"),
        (lambda b: b[:30], "truncated or corrupted"),
        (lambda b: b[:200] + b"\xff" * 16 + b[216:], "truncated or corrupted|lacks"),
        (lambda b: b"PK\x03\x04" + b[4:], "not a GGUF file"),
        (lambda b: b"", "not a GGUF file"),
    ],
    ids=["half", "header-only", "garbled-metadata", "zip-magic", "empty"],
)
def test_bad_files_are_one_sentence(tmp_path, damage, message):
    good = write_llama(tmp_path / "good.gguf").read_bytes()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(damage(good))
    with pytest.raises(UserError, match=message) as e:
        load_gguf(bad)
    assert "\n" not in str(e.value)


def test_missing_file_and_wrong_sizes(tmp_path):
    with pytest.raises(UserError, match="no GGUF file"):
        load_gguf(tmp_path / "nothing.gguf")
    path = write_llama(tmp_path / "odd.gguf", corrupt_metadata={"block_count": 3})
    with pytest.raises(UserError, match="lacks the tensor blk.2"):
        load_gguf(path)


def test_cli_generates_from_a_gguf_file_and_refuses_a_bad_one(tmp_path, capsys):
    from glassformer.cli import main

    path = write_llama(tmp_path / "tiny.gguf")
    assert (
        main(["generate", "--model", str(path), "--prompt", " the", "--max-new-tokens", "3"]) == 0
    )
    capsys.readouterr()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(path.read_bytes()[:5000])
    assert main(["generate", "--model", str(bad), "--prompt", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "truncated or corrupted" in err and "\n" not in err and "Traceback" not in err
