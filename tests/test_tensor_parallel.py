"""Tensor parallelism (`--train.parallel tp`) on 2 processes (gloo) equals 1 process, on a
Llama-shaped GPT (rotary positions, grouped-query attention, SwiGLU): the fused qkv and
gate/up matrices are reordered so that each process holds whole heads (train/parallel.py)."""

import pytest
import torch
from test_fsdp import losses, train  # the same torchrun launcher and metrics reader

from glassformer import checkpoint
from glassformer.train.parallel import section_order

# 4 query heads over 2 K/V heads, 8 wide each: each process gets 2 query and 1 K/V head
LLAMA = ["--model.n_head", "4", "--model.n_kv_head", "2", "--model.pos_emb", "rotary",
         "--model.activation", "swiglu", "--model.norm", "rmsnorm"]  # fmt: skip
ARGS = ["--preset", "tiny", "--quiet", "--max-steps", "10", "--train.precision", "fp32",
        "--train.sample_tokens", "0", *LLAMA]  # fmt: skip


def test_section_order_gives_each_block_its_share_of_every_section():
    # [q: 4 heads | k: 2 heads | v: 2 heads] of one row each, over 2 processes
    order = section_order((4, 2, 2), 2)
    assert order.tolist() == [0, 1, 4, 6, 2, 3, 5, 7]
    assert sorted(order.tolist()) == list(range(8))
    # SwiGLU's [gate | up] over 2: [gate_0 up_0 | gate_1 up_1]
    assert section_order((2, 2), 2).tolist() == [0, 2, 1, 3]


@pytest.mark.slow
def test_tensor_parallel_matches_one_process(tmp_path, small_corpus):
    data = ["--data", str(small_corpus)]
    one = train(tmp_path / "one", *ARGS, *data)
    assert one.returncode == 0, one.stderr[-3000:]
    two = train(tmp_path / "tp", *ARGS, *data, "--train.parallel", "tp", processes=2)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = losses(tmp_path / "one"), losses(tmp_path / "tp")
    assert len(a) == len(b) == 10
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-5
    assert a[-1] < a[0]
    # the checkpoint holds whole weights in the model's own row order
    single, _ = checkpoint.load(tmp_path / "one")
    parallel, _ = checkpoint.load(tmp_path / "tp")
    expected, got = single.state_dict(), parallel.state_dict()
    assert list(got) == list(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, atol=1e-5, rtol=0, msg=name)


@pytest.mark.slow
def test_heads_that_do_not_split_over_the_processes_are_one_sentence(tmp_path, small_corpus):
    out = tmp_path / "out"
    run = train(out, "--preset", "tiny", "--data", str(small_corpus), "--model.n_head", "1",
                "--train.parallel", "tp", processes=2)  # fmt: skip
    assert run.returncode != 0
    sentence = (
        "glassformer: error: --train.parallel tp gives each of the 2 processes whole heads, "
        "but the model has 1 query and 1 key/value heads; make --model.n_head "
        "(and --model.n_kv_head) a multiple of 2"
    )
    # each process says it once (their lines may interleave), with no traceback of ours; the
    # launcher then reports the exit status 2 in its own summary
    assert run.stderr.count("glassformer: error") == run.stderr.count(sentence) == 2
    assert "[rank" not in run.stderr and "glassformer/" not in run.stderr
    assert "exitcode  : 2" in run.stderr
    assert not out.exists()
