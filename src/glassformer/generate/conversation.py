"""A conversation in the model's own chat format: messages -> its chat template -> one Session.

An instruct model (SmolLM2-Instruct) answers well only when the conversation is written the
way it was fine-tuned on, which its chat template spells out (tokenizers/chat_template.py).

    >>> chat = Conversation(model, tokenizer, strategy="greedy", max_new_tokens=60)
    >>> "".join(chat.say("What is the capital of France?"))     # doctest: +SKIP
    'The capital of France is Paris.'
    >>> "".join(chat.say("And what is its population?"))        # doctest: +SKIP

Each turn renders the whole conversation (with the opening of the assistant's turn) and feeds
the `Session` only the text after what it has already seen, so the KV cache of earlier turns
is reused. What the session has seen is the previous rendering plus the reply's tokens (with
the end-of-turn token that stopped it); if the new rendering does not start with that text (a
template that re-spells earlier turns, a reply cut by a stop string), the turn starts a fresh
session over the whole rendering. Setting `system` (the system prompt) between turns works
the same way: the next rendering differs from the start, so the cache starts afresh.
"""

from collections.abc import Iterator, Sequence

import torch

from glassformer.generate.session import Session
from glassformer.tokenizers.chat_template import render_chat
from glassformer.tokenizers.pretrained_bpe import PretrainedBPE


class Conversation:
    """User and assistant messages, rendered by `tokenizer.chat_template`, on one Session."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: PretrainedBPE,
        system: str | None = None,
        **options,
    ):
        self.model, self.tokenizer, self.options = model, tokenizer, options
        self.template = tokenizer.chat_template
        self.system = system
        self.messages: list[dict[str, str]] = []  # user and assistant turns
        self.session = Session(model, tokenizer, **options)
        self.seen = ""  # the text of session.ids, as the template writes it

    @property
    def finish_reason(self) -> str | None:
        """Why the last reply ended: "stop_id" (the model ended its turn), "stop_string",
        "length" (max_new_tokens) or "cancelled" (Ctrl-C, or a reader that stopped)."""
        return self.session.finish_reason

    def clear(self) -> None:
        """Start afresh: no messages (the system prompt stays), and a new cache."""
        self.messages, self.seen = [], ""
        self.session.reset()

    def say(self, text: str, stop: Sequence[str] = ()) -> Iterator[str]:
        """Add the user's message; stream the assistant's reply (kept in the conversation),
        cut before a `stop` string if one comes before the model ends its turn. A reply cut
        short (Ctrl-C, a reader that stops reading) is kept as far as it went."""
        system = [] if self.system is None else [{"role": "system", "content": self.system}]
        messages = [*system, *self.messages, {"role": "user", "content": text}]
        names = self.tokenizer.template_tokens()
        prompt = render_chat(self.template, messages, add_generation_prompt=True, **names)
        self.messages.append(messages[-1])
        if not prompt.startswith(self.seen):  # the template re-spelled an earlier turn
            self.session.reset()  # (or the system prompt changed): start over the rendering
            self.seen = ""
        self.session.feed_ids(self.tokenizer.encode(prompt[len(self.seen) :], "all"))
        start = len(self.session.ids)
        pieces = []
        try:
            for piece in self.session.stream(stop):
                pieces.append(piece)
                yield piece
        finally:
            self.messages.append({"role": "assistant", "content": "".join(pieces)})
            self.seen = prompt + self.tokenizer.decode(self.session.ids[start:])  # stop id too
