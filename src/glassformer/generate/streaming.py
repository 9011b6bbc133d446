"""Token ids -> text pieces, as they come, never splitting a character; stop strings.

A byte-level BPE token is a run of bytes, not of characters: "é" is two UTF-8 bytes
(0xC3 0xA9) and a model may produce them as two tokens. Decoding each token on its own would
print two replacement characters. `TextStream` keeps the bytes of an unfinished character
until the token that completes it arrives:

    >>> s = TextStream(decode_bytes=lambda ids: bytes(ids))   # ids are bytes here
    >>> s.push([0x63, 0xC3]), s.push([0xA9]), s.finish()
    ('c', 'é', '')

Joining every piece gives exactly `tokenizer.decode(all ids)` for a byte-level tokenizer;
every kind has `decode_bytes` (the Tokenizer protocol), whole characters for the others.

Stop strings: when one appears in the text, the text before it is the last output and
`stopped` becomes True (the stop string itself is not emitted). Text that could still be the
start of a stop string is held back until the next piece decides.
"""

from collections.abc import Callable, Sequence

import glassformer.tokenizers.bpe  # noqa: F401  (registers the decode error handler below)

# lead byte -> length of the UTF-8 sequence it starts (only multi-byte leads are listed)
_SEQ_LEN = {b: 2 for b in range(0xC2, 0xE0)} | {b: 3 for b in range(0xE0, 0xF0)}
_SEQ_LEN |= {b: 4 for b in range(0xF0, 0xF5)}
# what `BPETokenizer.decode` uses: lone surrogates come back, other bad bytes become U+FFFD
_ERRORS = "glassformer_surrogatepass_or_replace"


def complete_prefix(data: bytes) -> int:
    """Length of the longest prefix of `data` that does not end inside a UTF-8 character.

    >>> complete_prefix("aé".encode()[:-1])   # b'a\\xc3': the é is unfinished
    1
    """
    for back in range(1, min(4, len(data)) + 1):
        need = _SEQ_LEN.get(data[-back])
        if need is not None:
            return len(data) - back if need > back else len(data)
        if data[-back] < 0x80:  # ASCII: nothing unfinished after it
            return len(data)
    return len(data)


class TextStream:
    """Feed token ids with `push`, get the text that is safe to show; `finish` at the end."""

    def __init__(self, decode_bytes: Callable[[Sequence[int]], bytes], stop: Sequence[str] = ()):
        self.decode_bytes = decode_bytes
        self.stop = [s for s in stop if s]
        self.pending = b""  # bytes of an unfinished character
        self.held = ""  # text that may be the start of a stop string
        self.stopped = False

    @classmethod
    def for_tokenizer(cls, tokenizer, stop: Sequence[str] = ()) -> "TextStream":
        return cls(decode_bytes=tokenizer.decode_bytes, stop=stop)

    def push(self, ids: Sequence[int]) -> str:
        """Text completed by these ids ('' while a character or a stop string is unfinished)."""
        if self.stopped:
            return ""
        data = self.pending + self.decode_bytes(list(ids))
        cut = complete_prefix(data)
        self.pending = data[cut:]
        return self._text(_decode(data[:cut]))

    def finish(self) -> str:
        """The rest: held text and any unfinished bytes (as U+FFFD, like `decode`)."""
        if self.stopped:
            return ""
        text = self._text(_decode(self.pending), final=True)
        self.pending = b""
        return text

    def _text(self, text: str, final: bool = False) -> str:
        text = self.held + text
        first = min((i for i in (text.find(s) for s in self.stop) if i >= 0), default=-1)
        if first >= 0:
            self.stopped, self.held = True, ""
            return text[:first]
        keep = 0 if final else self._stop_prefix_len(text)
        self.held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def _stop_prefix_len(self, text: str) -> int:
        """Length of the longest end of `text` that is the beginning of a stop string."""
        best = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:n]):
                    best = n
                    break
        return best


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors=_ERRORS)
