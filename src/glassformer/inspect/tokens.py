"""The token view: where the tokenizer cuts a text, and the id of each piece.

>>> tokens_view(CharTokenizer.train("hello"), "hell")["tokens"]        # doctest: +SKIP
[{'text': 'h', 'label': 'h', 'id': 1}, {'text': 'e', ...}, ...]
"""

from glassformer.errors import UserError
from glassformer.inspect.text import token_label


def tokens_view(tokenizer, text: str) -> dict:
    ids = tokenizer.encode(text)
    if not ids:
        raise UserError("the text is empty; pass --text with something to tokenize")
    return {
        "kind": "tokens",
        "title": "Tokens",
        "text": text,
        "tokenizer": type(tokenizer).__name__,
        "vocab_size": tokenizer.vocab_size,
        "chars": len(text),
        "tokens": [
            {"text": tokenizer.decode([i]), "label": token_label(tokenizer, i), "id": i}
            for i in ids
        ],
    }
