"""Special tokens: strings like `<|endoftext|>` that get one reserved id, and cannot be injected.

A special token marks structure (end of a document, a turn in a chat). If any user text that
happens to contain the characters `<|endoftext|>` were encoded as the special id, a user could
forge that structure. So, exactly like tiktoken:

- by default (`allowed_special=()`, `disallowed_special="all"`) text that contains a special
  token's string raises `DisallowedSpecialTokenError`;
- `allowed_special={"<|endoftext|>"}` (or `"all"`) opts in: the string becomes the special id;
- listing it in neither set (e.g. `disallowed_special=()`), or `encode_ordinary`, encodes the
  string as plain text, byte by byte like any other text.

minbpe's spellings work too: `allowed_special="none_raise"` is the default, and
`allowed_special="none"` encodes special strings as plain text.

The checks are `if` statements that raise, never `assert` (which `python -O` removes).

    >>> reg = SpecialTokens({"<|endoftext|>": 4095})
    >>> reg.split("a<|endoftext|>b", allowed=reg.resolve("all", "all")[0])
    ['a', '<|endoftext|>', 'b']
"""

from collections.abc import Collection
from typing import Literal

import regex

from glassformer.errors import UserError

AllOr = Literal["all", "none", "none_raise"] | Collection[str]


class DisallowedSpecialTokenError(UserError, ValueError):
    """Text contains a special token's string and the caller did not say what to do with it."""


class SpecialTokens:
    """A registry of special-token strings and their ids."""

    def __init__(self, tokens: dict[str, int] | None = None) -> None:
        self.tokens: dict[str, int] = dict(tokens or {})
        self.by_id: dict[int, str] = {i: s for s, i in self.tokens.items()}
        if len(self.by_id) != len(self.tokens):
            raise UserError("two special tokens share one id; give each special token its own id.")
        if "" in self.tokens:
            raise UserError(
                "a special token cannot be the empty string; give it a name like <|pad|>."
            )
        self._regex_cache: dict[frozenset[str], regex.Pattern] = {}

    def __len__(self) -> int:
        return len(self.tokens)

    def resolve(
        self, allowed_special: AllOr, disallowed_special: AllOr
    ) -> tuple[frozenset[str], frozenset[str]]:
        """Turn tiktoken-style arguments into two sets: (allowed, disallowed)."""
        names = frozenset(self.tokens)
        if allowed_special == "none":  # minbpe's spelling of "special strings are plain text"
            return frozenset(), frozenset()
        if allowed_special == "none_raise":  # minbpe's spelling of the default
            allowed_special = ()
        allowed = names if allowed_special == "all" else frozenset(allowed_special)
        unknown = allowed - names
        if unknown:
            raise UserError(
                f"allowed_special names {sorted(unknown)} which this tokenizer does not have; "
                f"its special tokens are {sorted(names)}."
            )
        disallowed = (
            names - allowed if disallowed_special == "all" else frozenset(disallowed_special)
        )
        return allowed, disallowed

    def _regex(self, tokens: frozenset[str]) -> regex.Pattern:
        if tokens not in self._regex_cache:
            alternatives = sorted(tokens, key=len, reverse=True)  # longest first
            self._regex_cache[tokens] = regex.compile(
                "|".join(regex.escape(t) for t in alternatives)
            )
        return self._regex_cache[tokens]

    def check(self, text: str, disallowed: frozenset[str]) -> None:
        """Raise `DisallowedSpecialTokenError` if `text` contains any string in `disallowed`."""
        if not disallowed:
            return
        found = self._regex(disallowed).search(text)
        if found is not None:
            raise DisallowedSpecialTokenError(
                f"the text contains the special token {found.group()!r} at character "
                f"{found.start()}; "
                f"pass allowed_special={{{found.group()!r}}} to encode it as a special token, or "
                "disallowed_special=() (or use encode_ordinary) to encode it as plain text."
            )

    def split(self, text: str, allowed: frozenset[str]) -> list[str]:
        """Cut `text` around occurrences of allowed special tokens (kept as their own items)."""
        if not allowed:
            return [text] if text else []
        parts, start = [], 0
        for m in self._regex(allowed).finditer(text):
            if m.start() > start:
                parts.append(text[start : m.start()])
            parts.append(m.group())
            start = m.end()
        if start < len(text):
            parts.append(text[start:])
        return parts
