"""Chat messages -> the prompt the model continues.

A model whose vocabulary carries a chat template (a `PretrainedBPE`: SmolLM2's ChatML, read
from its GGUF file) gets that template, rendered in Jinja's sandbox by
tokenizers/chat_template.py; its special tokens (`<|im_start|>`) are encoded as such, and the
model ends its turn with its end-of-sequence id.

A model without a template (our own GPTs, trained on plain text) gets a plain transcript, one
line per message, and the opening of the assistant's line:

    [{"role": "system", "content": "Be brief."},       system: Be brief.
     {"role": "user", "content": "Hi"}]          ->     user: Hi
                                                        assistant:

Its reply also stops before a new line that starts another turn (`FALLBACK_STOP`), so the
model does not write the user's next line for them.
"""

from glassformer.generate import encode_prompt
from glassformer.serve.errors import APIError
from glassformer.tokenizers.chat_template import render_chat
from glassformer.tokenizers.pretrained_bpe import PretrainedBPE

ROLES = ("system", "developer", "user", "assistant", "tool")
FALLBACK_STOP = ["\nuser:", "\nsystem:"]


def message_texts(messages) -> list[dict[str, str]]:
    """The request's messages as {"role", "content"} with text content (checked)."""
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "messages must be a non-empty array of messages", param="messages")
    out = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise APIError(
                400, f"{where} must be an object with a role of {', '.join(ROLES)}", param=where
            )
        content = m.get("content")
        if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
            if not all(isinstance(c, dict) and c.get("type") == "text" for c in content):
                raise APIError(400, f"{where}.content parts must all be text parts", param=where)
            content = "".join(str(c.get("text", "")) for c in content)
        if not isinstance(content, str):
            raise APIError(400, f"{where}.content must be a string", param=where)
        out.append({"role": m["role"], "content": content})
    return out


def chat_prompt(tokenizer, messages: list[dict[str, str]]) -> tuple[list[int], list[str]]:
    """(prompt ids, stop strings the reply also ends at) for checked `messages`.

    The template is rendered as `glassformer chat` renders it (generate/conversation.py):
    with the vocabulary's `bos_token` / `eos_token` names."""
    if isinstance(tokenizer, PretrainedBPE) and tokenizer.chat_template:
        names = tokenizer.template_tokens()
        text = render_chat(tokenizer.chat_template, messages, add_generation_prompt=True, **names)
        return tokenizer.encode(text, "all"), []
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
    return encode_prompt(tokenizer, text), FALLBACK_STOP
