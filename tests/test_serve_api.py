"""`glassformer serve`'s OpenAI API, driven by the official `openai` client and by raw HTTP.

One server per module (uvicorn in a thread on a free port) serves a tiny random GPT with a
byte-level BPE tokenizer trained here, so every test runs in well under a second.
"""

import json
import threading
import time

import httpx
import pytest
import torch

from glassformer import GPT, GPTConfig
from glassformer.checkpoint import save
from glassformer.cli import main
from glassformer.serve import BackgroundServer, create_app
from glassformer.tokenizers import BPETokenizer
from glassformer.tokenizers.pretrained_bpe import PretrainedBPE, pattern_for

openai = pytest.importorskip("openai")

TEXT = (
    "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. "
    "First Citizen: You are all resolved rather to die than to famish? All: Resolved. "
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u2014 \u00fcber sch\u00f6n. "
) * 3
BLOCK = 64


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    return BPETokenizer.train(TEXT, 300)


@pytest.fixture(scope="module")
def model(tok) -> GPT:
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=BLOCK, n_layer=3, n_head=2, n_embd=32)
    model = GPT(cfg).eval()
    with torch.no_grad():  # larger weights than the init: confident, varied predictions
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(std=0.3)
    return model


@pytest.fixture(scope="module")
def server(model, tok):
    app = create_app(model, tok, "tiny", max_batch=8, max_tokens_cap=200)
    with BackgroundServer(app) as url:
        yield url, app.state.glassformer.worker


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server[0] + "/v1", api_key="none", max_retries=0)


def _post(url: str, body, **kw) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url + "/v1/completions", content=content, timeout=30, **kw)


# ---- the API --------------------------------------------------------------------------------


def test_models_lists_the_one_served_model(client):
    assert [m.id for m in client.models.list()] == ["tiny"]
    assert client.models.retrieve("tiny").owned_by == "glassformer"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4")


def test_greedy_completion_equals_glassformer_generate(client, model, tok, tmp_path, capsys):
    save(tmp_path / "ckpt", model, tok)
    prompt = "First Citizen:"
    r = client.completions.create(model="tiny", prompt=prompt, max_tokens=20, temperature=0)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 20 and r.usage.prompt_tokens == len(tok.encode(prompt))
    flags = ["--prompt", prompt, "--strategy", "greedy", "--max-new-tokens", "20"]
    assert main(["generate", "--model", str(tmp_path / "ckpt"), *flags]) == 0
    assert capsys.readouterr().out == prompt + r.choices[0].text + "\n"


def test_streamed_text_joined_equals_the_non_streamed_text(client):
    for kw in (dict(temperature=0.9, seed=3), dict(temperature=0)):
        whole = client.completions.create(model="tiny", prompt="All:", max_tokens=30, n=2, **kw)
        chunks = list(
            client.completions.create(
                model="tiny", prompt="All:", max_tokens=30, n=2, stream=True, **kw
            )
        )
        for i in range(2):
            joined = "".join(c.choices[0].text for c in chunks if c.choices[0].index == i)
            assert joined == whole.choices[i].text
        assert {c.choices[0].finish_reason for c in chunks} == {None, "length"}
    messages = [{"role": "user", "content": "Speak."}]
    whole = client.chat.completions.create(model="tiny", messages=messages, max_tokens=25, seed=1)
    stream = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=25, seed=1, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    joined = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert joined == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


def test_n_choices_use_seed_plus_index(client):
    kw = dict(model="tiny", prompt="You are", max_tokens=15, temperature=1.0)
    three = client.completions.create(n=3, seed=10, **kw)
    assert [c.index for c in three.choices] == [0, 1, 2]
    for i, choice in enumerate(three.choices):
        assert choice.text == client.completions.create(seed=10 + i, **kw).choices[0].text
    assert len({c.text for c in three.choices}) > 1
    assert three.usage.completion_tokens == 45


def test_logprobs_are_the_models_log_softmax(client, model, tok):
    prompt = "Before we"
    r = client.completions.create(
        model="tiny", prompt=prompt, max_tokens=5, temperature=0, logprobs=3
    )
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 5
    with torch.no_grad():
        logits, _ = model(torch.tensor([tok.encode(prompt)]))
    expected = torch.log_softmax(logits[0, -1], dim=-1)
    best = expected.topk(3)
    assert lp.token_logprobs[0] == pytest.approx(float(best.values[0]), abs=1e-4)
    assert list(lp.top_logprobs[0].values()) == pytest.approx(best.values.tolist(), abs=1e-4)
    assert "".join(lp.tokens) == r.choices[0].text  # ASCII text: every token is whole
    chat = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4, temperature=0,
        logprobs=True, top_logprobs=2,
    )  # fmt: skip
    content = chat.choices[0].logprobs.content
    assert len(content) == 4 and all(len(c.top_logprobs) == 2 for c in content)
    assert all(c.logprob == pytest.approx(c.top_logprobs[0].logprob) for c in content)  # greedy
    data = bytes(b for c in content for b in c.bytes)
    assert data.decode("utf-8", "replace") == chat.choices[0].message.content


def test_stop_sequences_cut_before_the_stop(client):
    kw = dict(model="tiny", prompt="First", max_tokens=30, temperature=0)
    free = client.completions.create(**kw).choices[0].text
    stop = free[10:13]
    r = client.completions.create(stop=[stop, "never-there"], **kw)
    assert r.choices[0].text == free[: free.index(stop)] and r.choices[0].finish_reason == "stop"
    streamed = list(client.completions.create(stop=stop, stream=True, **kw))
    assert "".join(c.choices[0].text for c in streamed) == r.choices[0].text
    assert streamed[-1].choices[0].finish_reason == "stop"


def test_chat_without_a_template_is_a_plain_transcript(client, tok):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Speak."}]
    r = client.chat.completions.create(model="tiny", messages=messages, max_tokens=3)
    prompt = "system: Be brief.\nuser: Speak.\nassistant:"
    assert r.usage.prompt_tokens == len(tok.encode(prompt))
    assert r.choices[0].message.role == "assistant"


def test_chat_uses_the_models_template():
    """A pretrained vocabulary's template (ChatML here, as SmolLM2's), its specials encoded."""
    tokens = [chr(i) for i in range(33, 127)] + ["Ġ", "Ċ", "<|im_start|>", "<|im_end|>"]
    chatml = PretrainedBPE.from_byte_level(
        tokens, [1] * 96 + [3, 3], [], pattern_for("gpt2"), eos_id=97,
        chat_template=(
            "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
        ),
    )  # fmt: skip
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=98, block_size=64, n_layer=1, n_head=2, n_embd=16)).eval()
    with BackgroundServer(create_app(model, chatml, "tiny")) as url:
        c = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
        r = c.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "Speak."}], max_tokens=3
        )
    rendered = "<|im_start|>user\nSpeak.<|im_end|>\n<|im_start|>assistant\n"
    ids = chatml.encode(rendered, "all")
    assert r.usage.prompt_tokens == len(ids) == 25 and ids.count(96) == 2  # two <|im_start|>


def test_echo_with_max_tokens_0_scores_the_prompt(client, model, tok):
    prompt = "First Citizen: Before we proceed"
    r = client.completions.create(
        model="tiny", prompt=prompt, max_tokens=0, echo=True, logprobs=2, temperature=0
    )
    c = r.choices[0]
    assert c.text == prompt and c.finish_reason == "length"
    assert r.usage.completion_tokens == 0
    ids = tok.encode(prompt)
    with torch.no_grad():
        logits, _ = model(torch.tensor([ids]))
    logp = torch.log_softmax(logits[0, :-1].float(), dim=-1)  # (T-1, V) the plain forward
    expected = logp.gather(1, torch.tensor(ids[1:])[:, None])[:, 0].tolist()
    lp = c.logprobs
    assert lp.tokens == [tok.decode([i]) for i in ids]  # ASCII text: every token is whole
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None  # as OpenAI's
    assert lp.token_logprobs[1:] == pytest.approx(expected, abs=1e-5)
    for t, top in enumerate(lp.top_logprobs[1:]):
        best = logp[t].topk(2).values.tolist()  # two ids may decode to one text: one key
        assert max(top.values()) == pytest.approx(best[0], abs=1e-5) and len(top) <= 2
    assert lp.text_offset == [len("".join(lp.tokens[:i])) for i in range(len(ids))]
    plain = client.completions.create(model="tiny", prompt=ids, max_tokens=0, echo=True)
    assert plain.choices[0].text == prompt and plain.choices[0].logprobs is None
    assert (
        client.completions.create(model="tiny", prompt=prompt, max_tokens=0).choices[0].text == ""
    )


def test_echo_puts_the_prompt_before_the_completion_streamed_or_not(client):
    kw = dict(model="tiny", prompt="All: Speak", max_tokens=6, temperature=0, logprobs=1)
    plain = client.completions.create(**kw).choices[0]
    echo = client.completions.create(echo=True, **kw).choices[0]
    assert echo.text == "All: Speak" + plain.text
    n = len(echo.logprobs.tokens) - len(plain.logprobs.tokens)  # the prompt's tokens
    assert echo.logprobs.token_logprobs[n:] == pytest.approx(plain.logprobs.token_logprobs)
    assert echo.logprobs.text_offset[n] == len("All: Speak")
    chunks = list(client.completions.create(echo=True, stream=True, **kw))
    assert chunks[0].choices[0].text.startswith("All: Speak")  # the prompt goes out first
    assert "".join(c.choices[0].text for c in chunks) == echo.text
    streamed = [x for c in chunks if c.choices[0].logprobs for x in c.choices[0].logprobs.tokens]
    assert streamed == echo.logprobs.tokens
    offsets = [
        x for c in chunks if c.choices[0].logprobs for x in c.choices[0].logprobs.text_offset
    ]
    assert offsets == echo.logprobs.text_offset


def test_a_completion_stopped_at_end_of_text_lists_that_token_last(client):
    kw = dict(model="tiny", prompt="All:", max_tokens=60, temperature=3.0, seed=5, logprobs=1)
    r = client.completions.create(n=20, **kw)
    stopped = [c for c in r.choices if c.finish_reason == "stop"]  # no stop strings: end of text
    assert stopped, "no choice reached the end-of-text token: pick another seed"
    # every generated token (what usage counts, the end-of-text token included) has its entry
    assert sum(len(c.logprobs.tokens) for c in r.choices) == r.usage.completion_tokens
    for c in stopped:
        assert isinstance(c.logprobs.token_logprobs[-1], float)
        assert c.logprobs.text_offset[-1] == len(c.text)  # its text is not in the reply
    c = stopped[0]
    alone = client.completions.create(**(kw | {"seed": kw["seed"] + c.index})).choices[0]
    assert alone.logprobs.tokens == c.logprobs.tokens
    chunks = list(client.completions.create(stream=True, **(kw | {"seed": kw["seed"] + c.index})))
    streamed = [x for k in chunks if k.choices[0].logprobs for x in k.choices[0].logprobs.tokens]
    assert streamed == c.logprobs.tokens


def test_max_tokens_0_is_for_completions_only(server):
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}
    r = httpx.post(server[0] + "/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"


def test_token_id_prompts_and_several_prompts(client, tok):
    ids = tok.encode("All: Speak")
    a = client.completions.create(model="tiny", prompt=ids, max_tokens=8, temperature=0)
    b = client.completions.create(model="tiny", prompt="All: Speak", max_tokens=8, temperature=0)
    assert a.choices[0].text == b.choices[0].text
    r = client.completions.create(
        model="tiny", prompt=["All: Speak", "First"], max_tokens=8, temperature=0, n=2
    )
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    assert r.choices[0].text == r.choices[1].text == b.choices[0].text


def test_api_key_is_required_when_set(model, tok):
    with BackgroundServer(create_app(model, tok, "tiny", api_key="s3cret")) as url:
        for key in ("wrong", ""):
            c = openai.OpenAI(base_url=url + "/v1", api_key=key or "x", max_retries=0)
            with pytest.raises(openai.AuthenticationError):
                c.models.list()
        r = httpx.post(url + "/v1/inspect", json={"view": "tokens", "text": "hi"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        ok = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
        assert ok.completions.create(model="tiny", prompt="All", max_tokens=2).choices
        assert httpx.get(url + "/").status_code == 200  # the page itself holds no data


# ---- bad input: the right status, OpenAI's error shape, the server unharmed ---------------------

BAD = [
    (b'{"prompt": "All", "max_tokens": 5', 400, None),  # malformed JSON
    (b"[1, 2]", 400, None),  # not an object
    (b'{"prompt": "\xff\xfe All"}', 400, None),  # invalid UTF-8
    ({"prompt": 5}, 400, "prompt"),
    ({"prompt": "All", "max_tokens": "5"}, 400, "max_tokens"),
    ({"prompt": "All", "temperature": "hot"}, 400, "temperature"),
    ({"prompt": "All", "n": True}, 400, "n"),
    ({"prompt": "All", "stop": 7}, 400, "stop"),
    ({"prompt": "All", "stream": "yes"}, 400, "stream"),
    ({"prompt": "All", "max_tokens": -3}, 400, "max_tokens"),
    ({"prompt": "All", "max_tokens": 10**12}, 400, "max_tokens"),
    ({"prompt": "All", "temperature": -0.5}, 400, "temperature"),
    ({"prompt": "All", "top_p": 1.5}, 400, "top_p"),
    ({"prompt": "All", "top_k": -1}, 400, "top_k"),
    ({"prompt": "All", "strategy": "telepathy"}, 400, "strategy"),
    ({"prompt": "All", "num_beams": 0, "strategy": "beam"}, 400, "num_beams"),
    ({"prompt": "All", "early_stopping": "soon", "strategy": "beam"}, 400, "early_stopping"),
    ({"prompt": "All", "min_p": 2}, 400, "min_p"),
    ({"prompt": "All", "n": 0}, 400, "n"),
    ({"prompt": "All", "logprobs": 99}, 400, "logprobs"),
    ({"prompt": "All", "logprobs": 1, "strategy": "beam"}, 400, "logprobs"),
    ({"prompt": [10**6]}, 400, "prompt"),
    ({"prompt": "All", "model": "gpt-4"}, 404, "model"),
    ({"prompt": "All " * 200}, 413, "prompt"),
    (b'{"prompt": "' + b"a" * 10_000_000 + b'"}', 413, None),  # a 10 MB body
]


@pytest.mark.parametrize("body, status, param", BAD, ids=lambda v: str(v)[:30])
def test_bad_input_gets_its_status_and_a_json_error(server, body, status, param):
    r = _post(server[0], body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["message"] and error["type"]
    if param:
        assert param in error["message"]


def test_unknown_fields_are_ignored(server):
    r = _post(server[0], {"prompt": "All", "max_tokens": 2, "frobnicate": {"x": 1}, "user": "u"})
    assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "length"


def test_chat_bad_messages(server):
    for messages, param in (
        ("hi", "messages"),
        ([], "messages"),
        ([{"role": "cat"}], "messages[0]"),
    ):
        r = httpx.post(server[0] + "/v1/chat/completions", json={"messages": messages})
        assert r.status_code == 400 and r.json()["error"]["param"] == param
    r = httpx.get(server[0] + "/v1/nowhere")
    assert r.status_code == 404 and "error" in r.json()


def test_a_client_that_disconnects_frees_its_row(tok):
    """max_batch 1: the next request can only run once the departed client's row is free (the
    model has rotary positions and a long context: its requests would run for minutes)."""
    torch.manual_seed(0)
    cfg = GPTConfig(
        vocab_size=tok.vocab_size, block_size=10**6, n_layer=1, n_head=2, n_embd=16,
        pos_emb="rotary",
    )  # fmt: skip
    app = create_app(GPT(cfg).eval(), tok, "tiny", max_batch=1, max_tokens_cap=10**6)
    with BackgroundServer(app) as url:
        engine_busy = {"prompt": "All", "max_tokens": 10**6, "temperature": 0, "stream": True}
        with httpx.stream("POST", url + "/v1/completions", json=engine_busy, timeout=30) as r:
            next(r.iter_lines())  # one event, then hang up
        start = time.perf_counter()
        r = _post(url, {"prompt": "First", "max_tokens": 3})
        assert r.status_code == 200 and time.perf_counter() - start < 10
        with pytest.raises(httpx.ReadTimeout):  # not streaming: gives up waiting for the answer
            httpx.post(url + "/v1/completions", json={**engine_busy, "stream": False}, timeout=1)
        start = time.perf_counter()
        r = _post(url, {"prompt": "First", "max_tokens": 3})
        assert r.status_code == 200 and time.perf_counter() - start < 10


def test_bad_requests_and_disconnects_leave_other_streams_intact(server, client):
    """A background client streams while every bad request of the table and a client that
    hangs up mid-stream hit the server: its text equals the same request made alone."""
    url = server[0]
    kw = dict(model="tiny", prompt="First Citizen:", max_tokens=60, temperature=0)
    expected = client.completions.create(**kw).choices[0].text
    got: list[str] = []

    def background():
        for chunk in client.completions.create(stream=True, **kw):
            got.append(chunk.choices[0].text)
            time.sleep(0.01)  # a slow reader: the server must not drop or reorder its tokens

    thread = threading.Thread(target=background)
    thread.start()
    for body, status, _ in BAD:
        assert _post(url, body).status_code == status
    with httpx.stream("POST", url + "/v1/completions", json={**kw, "stream": True}) as r:
        next(r.iter_lines())
    thread.join(60)
    assert "".join(got) == expected
    deadline = time.perf_counter() + 5
    while server[1].load and time.perf_counter() < deadline:  # the hang-up reaches the engine
        time.sleep(0.01)
    assert server[1].load == 0  # nothing left running


# ---- /health, system_fingerprint, refused parameters, CORS, the decode dtype ---------------


def test_health_answers_without_the_api_key(model, tok):
    with BackgroundServer(create_app(model, tok, "tiny", api_key="s3cret")) as url:
        r = httpx.get(url + "/health")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        assert httpx.get(url + "/v1/models").status_code == 401  # the API still needs it


def test_every_response_and_chunk_carries_the_system_fingerprint(client, model):
    from glassformer.serve.app import fingerprint

    expected = fingerprint(model, "tiny")
    assert expected.startswith("fp_") and len(expected) == 3 + 16
    assert fingerprint(model, "other") != expected != fingerprint(model, "tiny", "bfloat16")
    r = client.completions.create(model="tiny", prompt="All", max_tokens=2)
    assert r.system_fingerprint == expected
    messages = [{"role": "user", "content": "Speak."}]
    c = client.chat.completions.create(model="tiny", messages=messages, max_tokens=2)
    assert c.system_fingerprint == expected
    chunks = list(
        client.chat.completions.create(model="tiny", messages=messages, max_tokens=2, stream=True)
    )
    assert chunks and {ch.system_fingerprint for ch in chunks} == {expected}


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
         "response_format"),
    ],
)  # fmt: skip
def test_tools_and_response_format_are_refused_by_name(server, extra, param):
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **extra}
    r = httpx.post(server[0] + "/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and param in error["message"]
    assert error["type"] == "invalid_request_error"


def test_text_response_format_and_no_tools_are_accepted(client):
    r = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=2,
        response_format={"type": "text"}, tool_choice="none",
    )  # fmt: skip
    assert r.choices[0].finish_reason == "length"


def test_cors_answers_the_preflight_of_the_given_origins_only(model, tok):
    origin = "http://localhost:5173"
    app = create_app(model, tok, "tiny", cors=[origin, "https://example.org"])
    with BackgroundServer(app) as url:
        ask = {"Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization, content-type"}  # fmt: skip
        r = httpx.options(url + "/v1/chat/completions", headers={"Origin": origin, **ask})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == origin
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        other = httpx.options(
            url + "/v1/chat/completions", headers={"Origin": "http://evil.test", **ask}
        )
        assert "access-control-allow-origin" not in other.headers
        got = httpx.get(url + "/v1/models", headers={"Origin": origin})
        assert got.headers["access-control-allow-origin"] == origin
    with BackgroundServer(create_app(model, tok, "tiny")) as url:  # no --cors: no headers
        r = httpx.options(url + "/v1/models", headers={"Origin": origin, **ask})
        assert "access-control-allow-origin" not in r.headers


def test_decode_dtype_runs_the_decode_steps_on_a_copy(model, tok):
    import glassformer
    from glassformer.errors import UserError

    app = create_app(model, tok, "tiny", decode_dtype="bfloat16")
    ctx = app.state.glassformer.worker.engine.ctx
    assert next(ctx.decode_model.parameters()).dtype == torch.bfloat16
    assert next(model.parameters()).dtype == torch.float32  # the served model is untouched
    with BackgroundServer(app) as url:
        c = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
        r = c.completions.create(model="tiny", prompt="All:", max_tokens=12, temperature=0)
    expect = glassformer.generate(
        model, tok, "All:", max_new_tokens=12, strategy="greedy", decode_dtype="bfloat16"
    )
    assert r.choices[0].text == expect
    with pytest.raises(UserError, match="float32, bfloat16, int8, int4"):
        create_app(model, tok, "tiny", decode_dtype="float16")
