"""Continuous batching is exact: a request decoded beside others gives what it gives alone.

The worker (serve/worker.py) drives generate's engine: one forward per step for every running
request; rows join at their prefill and leave at their stop (generate/slots.py). These tests
drive the worker directly with tiny random models (fast) and check the rows' bookkeeping by a
forward hook.
"""

import threading

import pytest
import torch

import glassformer
from glassformer import GPT, GPTConfig
from glassformer.generate.session import text_options
from glassformer.generate.slots import SlotCache
from glassformer.serve.worker import Finish, Request, Token, Worker
from glassformer.tokenizers import CharTokenizer

TOK = CharTokenizer("".join(chr(ord("A") + i) for i in range(58)))


def _model(pos_emb="learned", block=64, n_kv_head=0, seed=0) -> GPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(
        vocab_size=TOK.vocab_size, block_size=block, n_layer=3, n_head=4, n_embd=32,
        pos_emb=pos_emb, n_kv_head=n_kv_head,
    )  # fmt: skip
    model = GPT(cfg).eval()
    with torch.no_grad():  # larger weights than the init: confident, varied predictions
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(std=0.3)
    return model


class Collector:
    """Submit requests to an engine and wait for their texts and finish reasons."""

    def __init__(self, engine: Worker):
        self.engine = engine
        self.results: dict[int, tuple[str, str, int]] = {}
        self.done = threading.Semaphore(0)

    def submit(self, key: int, prompt: str, **options) -> Request:
        stop = options.pop("stop", ())
        parts: list[str] = []

        def emit(event):
            parts.append(event.text)
            if isinstance(event, Finish):
                self.results[key] = ("".join(parts), event.reason, event.completion_tokens)
                self.done.release()

        options = {"strategy": "sample", "temperature": 0.0, **options}
        req = Request(TOK.encode(prompt), text_options(TOK, **options), emit, stop)
        self.engine.submit(req)
        return req

    def wait(self, n: int) -> None:
        for _ in range(n):
            assert self.done.acquire(timeout=60), "a request never finished"


PROMPTS = [
    "A",
    "HELLO",
    "ABCDEFGHIJKL",
    "XY",
    "QQQQQQQQQQQQQQQQQQQQ",
    "B",
    "KLMNOPQRS",
    "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
]


def _alone(model, prompts, **options) -> list[tuple[str, str, int]]:
    engine = Worker(model, TOK, max_batch=8)
    try:
        out = []
        for p in prompts:
            c = Collector(engine)
            c.submit(0, p, **options)
            c.wait(1)
            out.append(c.results[0])
        return out
    finally:
        engine.close()


@pytest.mark.parametrize("pos_emb, n_kv_head", [("learned", 0), ("rotary", 2)])
def test_eight_concurrent_greedy_requests_equal_each_alone(pos_emb, n_kv_head):
    model = _model(pos_emb, n_kv_head=n_kv_head)
    batches = []
    handle = model.register_forward_hook(lambda m, args, out: batches.append(args[0].shape))
    alone = _alone(model, PROMPTS, max_new_tokens=30)
    engine = Worker(model, TOK, max_batch=8)
    try:
        c = Collector(engine)
        for i, p in enumerate(PROMPTS):
            c.submit(i, p, max_new_tokens=30)
        c.wait(len(PROMPTS))
    finally:
        engine.close()
        handle.remove()
    together = [c.results[i] for i in range(len(PROMPTS))]
    assert together == alone
    assert max(shape[0] for shape in batches) == 8  # one decode forward held all eight
    # and alone equals the library's own generation (same options, same stop)
    for p, (text, reason, count) in zip(PROMPTS, alone, strict=True):
        assert reason == "length" and count == 30
        assert text == glassformer.generate(model, TOK, p, max_new_tokens=30)


def test_rows_join_and_leave_mid_flight_without_changing_anyone():
    """Requests of different lengths stop at different steps, new ones join while others run
    (prompts longer than every running row shift the batch right), with max_batch 3 < 9."""
    model = _model("learned")
    prompts = [
        "AB",
        "CDEFGHIJKLMNOPQRST",
        "U",
        "VWXYZ",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZABCD",
        "K",
        "LMN",
        "OPQRSTUV",
        "W",
    ]
    lengths = [5, 25, 12, 3, 20, 30, 1, 9, 17]
    alone = [_alone(model, [p], max_new_tokens=n)[0] for p, n in zip(prompts, lengths, strict=True)]
    engine = Worker(model, TOK, max_batch=3)
    try:
        c = Collector(engine)
        for i, (p, n) in enumerate(zip(prompts, lengths, strict=True)):
            c.submit(i, p, max_new_tokens=n)
        c.wait(len(prompts))
    finally:
        engine.close()
    assert [c.results[i] for i in range(len(prompts))] == alone


def test_sampling_with_a_seed_is_the_same_alone_and_batched():
    model = _model("rotary")
    opts = dict(temperature=0.9, top_p=0.95, max_new_tokens=20)
    alone = [_alone(model, [p], seed=7 + i, **opts)[0] for i, p in enumerate(PROMPTS[:5])]
    engine = Worker(model, TOK, max_batch=8)
    try:
        c = Collector(engine)
        for i, p in enumerate(PROMPTS[:5]):
            c.submit(i, p, seed=7 + i, **opts)
        c.wait(5)
    finally:
        engine.close()
    assert [c.results[i] for i in range(5)] == alone
    assert alone[0][0] == glassformer.generate(
        model, TOK, PROMPTS[0], strategy="sample", seed=7, **opts
    )


def test_stop_id_stop_string_and_context_end():
    model = _model("learned", block=16)
    free = _alone(model, ["ABC"], max_new_tokens=10)[0][0]
    stop_id = TOK.encode(free[3])[0]
    text, reason, count = _alone(model, ["ABC"], max_new_tokens=10, stop_ids=(stop_id,))[0]
    assert reason == "stop" and text == free[: free.index(free[3])] and count == len(text) + 1
    text, reason, _ = _alone(model, ["ABC"], max_new_tokens=10, stop=[free[4:6]])[0]
    assert reason == "stop" and text == free[: free.index(free[4:6])]
    # a 12-token prompt in a 16-token context: 5 new tokens (the last is never fed)
    text, reason, count = _alone(model, ["ABCDEFGHIJKL"], max_new_tokens=50)[0]
    assert reason == "length" and count == 5 and len(text) == 5


def test_beam_and_contrastive_run_beside_the_batch_and_match_generate():
    model = _model("learned")
    engine = Worker(model, TOK, max_batch=4)
    try:
        c = Collector(engine)
        c.submit(0, "HELLO", strategy="beam", num_beams=3, max_new_tokens=12)
        c.submit(1, "ABC", strategy="contrastive", top_k=4, max_new_tokens=12)
        c.submit(2, "XY", max_new_tokens=25)
        c.wait(3)
    finally:
        engine.close()
    assert c.results[0][0] == glassformer.generate(
        model, TOK, "HELLO", strategy="beam", num_beams=3, max_new_tokens=12
    )
    assert c.results[1][0] == glassformer.generate(
        model, TOK, "ABC", strategy="contrastive", top_k=4, max_new_tokens=12
    )
    assert c.results[2][0] == glassformer.generate(model, TOK, "XY", max_new_tokens=25)


def test_a_cancelled_request_frees_its_row_at_once():
    model = _model("learned", block=256)
    engine = Worker(model, TOK, max_batch=1)
    try:
        c = Collector(engine)
        first = threading.Event()
        long = c.submit(0, "A", max_new_tokens=250)
        original = long.emit

        def emit(event):
            original(event)
            if isinstance(event, Token):
                first.set()

        long.emit = emit
        assert first.wait(30)
        engine.cancel(long)
        c.submit(1, "B", max_new_tokens=3)
        c.wait(2)
    finally:
        engine.close()
    assert c.results[0][1] == "cancelled" and c.results[0][2] < 250
    assert c.results[1][1] == "length" and c.results[1][2] == 3
    assert engine.engine.ctx.cache.running == 0


def test_slot_cache_keeps_rows_right_aligned_and_grows():
    model = _model("learned", block=64)
    slots = SlotCache(model, rows=3, capacity=4)
    k = lambda T, fill: torch.full((3, 4, T, 8), float(fill))  # noqa: E731 (n_layer, nkv, T, hs)
    assert slots.admit(k(3, 1), k(3, 1)) == 0
    assert slots.admit(k(6, 2), k(6, 2)) == 1  # longer: row 0 shifts right, storage grows
    assert slots.size == 6 and slots.capacity >= 6 and slots.lengths() == [3, 6]
    assert slots.k[0, 0, 0, 3:6, 0].tolist() == [1, 1, 1] and slots.pad.tolist() == [3, 0]
    slots.admit(k(2, 3), k(2, 3))
    assert slots.release(1) == 2  # the last row moves into row 1, common padding is dropped
    assert slots.lengths() == [3, 2] and slots.size == 3
    assert slots.k[0, 1, 0, 1:3, 0].tolist() == [3, 3]
    assert slots.key_valid[:, :3].tolist() == [[True, True, True], [False, True, True]]


def test_prompts_that_arrive_together_are_prefilled_together():
    """Requests waiting when the worker takes them in start with one batched forward (their
    prompts left-padded together), and still give what each gives alone."""
    model = _model("rotary")
    prompts = ["AB", "CDEFGH", "K", "LMNOPQRSTU"]
    alone = _alone(model, prompts, max_new_tokens=6)
    shapes = []
    handle = model.register_forward_hook(lambda m, args, out: shapes.append(tuple(args[0].shape)))
    worker = Worker(model, TOK, max_batch=8)
    try:
        gate = threading.Event()
        busy = worker.call(gate.wait)  # the worker waits here while all four arrive
        c = Collector(worker)
        for i, p in enumerate(prompts):
            c.submit(i, p, max_new_tokens=6)
        gate.set()
        busy.result(timeout=60)
        c.wait(len(prompts))
    finally:
        worker.close()
        handle.remove()
    assert [c.results[i] for i in range(len(prompts))] == alone
    assert shapes[0] == (4, 10)  # one prefill: four prompts padded to the longest
    assert shapes[1:] == [(4, 1)] * 5  # then one decode step for all four rows per token


def test_a_request_that_joins_mid_flight_decodes_in_the_same_forward_as_the_others():
    """Admitting a new request prefills it alone (its own forward), and the next step decodes
    the running row and the new one together: nobody falls back to a forward of its own."""
    model = _model("learned")
    shapes = []
    handle = model.register_forward_hook(lambda m, args, out: shapes.append(tuple(args[0].shape)))
    worker = Worker(model, TOK, max_batch=4)
    try:
        c = Collector(worker)
        first = threading.Event()
        long = c.submit(0, "ABC", max_new_tokens=40)
        original = long.emit
        long.emit = lambda event: (original(event), first.set())
        assert first.wait(30)
        gate = threading.Event()
        busy = worker.call(gate.wait)  # hold the loop while the second request arrives
        c.submit(1, "KLMNO", max_new_tokens=5)
        gate.set()
        busy.result(timeout=60)
        c.wait(2)
    finally:
        worker.close()
        handle.remove()
    joined = shapes.index((1, 5))  # the second prompt's prefill
    assert shapes[joined + 1 : joined + 5] == [(2, 1)] * 4  # then both rows in every step
