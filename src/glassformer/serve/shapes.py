"""The two response shapes of OpenAI's API: a completion and a chat completion.

The endpoints (openai_api.py) generate the same way for both; only the JSON differs. A
`Shape` says how, so the code that collects and streams the choices has no `if chat:`:

                      Completion                       Chat
    id / object       cmpl-... / text_completion       chatcmpl-... / chat.completion
    a choice          {"text": ...}                    {"message": {"role": "assistant",
                                                                    "content": ...}}
    a stream chunk    {"text": piece}                  {"delta": {"content": piece}}
    its object        text_completion                  chat.completion.chunk
    first chunks      none                             {"delta": {"role": "assistant",
                                                                  "content": ""}} per choice
    logprobs          tokens, token_logprobs,          content: [{token, logprob, bytes,
                      top_logprobs, text_offset        top_logprobs}]
                      (and the end-of-text token       (the reply's tokens only)
                      a reply stopped at, last, as
                      vLLM lists it: lm-eval drops
                      the last entry as the chosen
                      token)
"""

from glassformer.serve.choices import chat_logprobs, completion_logprobs


class Completion:
    """/v1/completions: text in, text out."""

    id_prefix = "cmpl-"
    object = "text_completion"
    chunk_object = "text_completion"
    lists_stop_token = True  # the end-of-text token a reply stopped at ends its logprobs

    def logprobs(self, tokenizer, items, offset: int = 0) -> dict:
        return completion_logprobs(tokenizer, items, offset)

    def body(self, text: str) -> dict:
        """A whole choice's text, as the non-streaming response writes it."""
        return {"text": text}

    def piece(self, text: str | None) -> dict:
        """A stream chunk's text (None: the finish chunk)."""
        return {"text": text or ""}

    def opening(self, index: int) -> dict | None:
        """The chunk that opens a streamed choice, if this shape has one."""
        return None


class Chat(Completion):
    """/v1/chat/completions: messages in, the assistant's message out."""

    id_prefix = "chatcmpl-"
    object = "chat.completion"
    chunk_object = "chat.completion.chunk"
    lists_stop_token = False

    def logprobs(self, tokenizer, items, offset: int = 0) -> dict:
        return chat_logprobs(tokenizer, items)

    def body(self, text: str) -> dict:
        return {"message": {"role": "assistant", "content": text}}

    def piece(self, text: str | None) -> dict:
        return {"delta": {} if text is None else {"content": text}}

    def opening(self, index: int) -> dict | None:
        return {
            "index": index,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }


COMPLETION, CHAT = Completion(), Chat()
