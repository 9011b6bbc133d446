"""Task `dates`: normalise dates written many ways to ISO 8601, with an encoder-decoder.

    "23 Nov 2026"                 -> "2026-11-23"
    "November 23rd, 2026"         -> "2026-11-23"
    "Monday, 23 November 2026"    -> "2026-11-23"
    "the 3rd of march 1999"       -> "1999-03-03"

The data is generated on the fly from every day of 1900-2099 in 12 formats (character-level
tokens). About 5% of the days never appear in training, in any format: the held-out exact
match is measured on those, with greedy decoding. The task shows what cross-attention is for:
each output character is copied or translated from a position of the source (month names to
numbers, day and year digits moved around), and the decoder finds that position by attending
to the encoder's output.
"""

import datetime as dt
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from glassformer.generate.seq2seq import translate_tokens
from glassformer.models.seq2seq import Seq2Seq, Seq2SeqConfig
from glassformer.tasks.run import python_rng, train_task
from glassformer.tokenizers.symbols import BOS, EOS, PAD, SPECIALS, SymbolVocab
from glassformer.train.config import TrainConfig

MONTHS = [dt.date(2000, m, 1).strftime("%B") for m in range(1, 13)]
WEEKDAYS = [dt.date(2024, 1, d).strftime("%A") for d in range(1, 8)]  # 2024-01-01: Monday
FIRST, LAST = dt.date(1900, 1, 1).toordinal(), dt.date(2099, 12, 31).toordinal()


def ordinal(n: int) -> str:
    """1 -> 1st, 2 -> 2nd, 3 -> 3rd, 11 -> 11th, 22 -> 22nd."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


FORMATS: list[Callable[[dt.date], str]] = [
    lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {ordinal(d.day)}, {d.year}",
    lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",
    lambda d: f"{d.day}.{d.month}.{d.year}",
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    lambda d: f"{WEEKDAYS[d.weekday()]}, {d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"the {ordinal(d.day)} of {MONTHS[d.month - 1].lower()} {d.year}",
    lambda d: f"{d.year}-{d.month:02d}-{d.day:02d}",
    lambda d: f"{d.day} {MONTHS[d.month - 1].upper()} {d.year}",
    lambda d: f"{d.year}/{d.month}/{d.day}",
    lambda d: f"{WEEKDAYS[d.weekday()][:3]} {MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    lambda d: f"{ordinal(d.day)} {MONTHS[d.month - 1]} {d.year}",
]
ALPHABET = string.ascii_letters + string.digits + " ,-./"


def is_held_out(day: int) -> bool:
    """About 1 day in 20, spread over the whole range (a fixed hash of the day number)."""
    return (day * 2654435761) % 1000 < 50


def example(rng: random.Random, held_out: bool) -> tuple[str, str]:
    """A (written date, ISO date) pair from the training days or from the held-out days."""
    while True:
        day = rng.randint(FIRST, LAST)
        if is_held_out(day) == held_out:
            break
    d = dt.date.fromordinal(day)
    return rng.choice(FORMATS)(d), d.isoformat()


@dataclass
class DatesTask:
    """Settings of the `dates` task (the documented run uses these defaults)."""

    max_steps: int = 1500
    batch_size: int = 64
    n_embd: int = 128
    n_layer: int = 2
    n_head: int = 4
    n_test: int = 1000
    lr: float = 1e-3

    def vocab(self) -> SymbolVocab:
        return SymbolVocab.of_chars(ALPHABET)

    def config(self, vocab: SymbolVocab) -> Seq2SeqConfig:
        return Seq2SeqConfig(
            vocab_size=vocab.vocab_size,
            block_size=48,
            n_layer=self.n_layer,
            n_dec_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            dropout=0.0,
            pad_id=PAD,
            bos_id=BOS,
            eos_id=EOS,
        )

    def model(self, vocab: SymbolVocab) -> Seq2Seq:
        return Seq2Seq(self.config(vocab))


def heldout_pairs(n: int) -> list[tuple[str, str]]:
    """The first `n` held-out (written date, ISO date) pairs: the same in every run."""
    return [example(random.Random(10_000 + i), held_out=True) for i in range(n)]


def sampler(vocab: SymbolVocab) -> Callable[[int, torch.Generator], tuple[torch.Tensor, ...]]:
    """`batches(n, gen)` for the Trainer: n encoded pairs of training days (`encode_batch`)."""

    def batches(n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        rng = python_rng(gen)
        return encode_batch([example(rng, False) for _ in range(n)], vocab)

    return batches


def encode_batch(pairs: list[tuple[str, str]], vocab: SymbolVocab):
    """Sources padded to the longest (B, S) with their mask, decoder input and targets (B, 11)."""
    src_ids = [vocab.encode(s) for s, _ in pairs]
    S = max(len(s) for s in src_ids)
    src = torch.full((len(pairs), S), PAD, dtype=torch.long)  # (B, S)
    for i, s in enumerate(src_ids):
        src[i, : len(s)] = torch.tensor(s)
    tgt = torch.tensor([vocab.encode(t) for _, t in pairs])  # (B, 10): ISO dates, same length
    tgt_in = torch.cat((torch.full((len(pairs), 1), BOS), tgt), dim=1)  # [BOS] y
    targets = torch.cat((tgt, torch.full((len(pairs), 1), EOS)), dim=1)  # y [EOS]
    return src, (src != PAD).long(), tgt_in, targets


def exact_match(model: Seq2Seq, vocab: SymbolVocab, pairs: list[tuple[str, str]]) -> float:
    """Fraction of pairs whose greedy decoding equals the ISO date exactly."""
    right = 0
    for start in range(0, len(pairs), 256):
        chunk = pairs[start : start + 256]
        src, mask, _, _ = encode_batch(chunk, vocab)
        out = translate_tokens(model, src, mask, max_len=12)
        for row, (_, iso) in zip(out.tolist(), chunk, strict=True):
            ids = row[: row.index(EOS)] if EOS in row else row
            right += vocab.decode(ids) == iso and all(i >= len(SPECIALS) for i in ids)
    return right / len(pairs)


def seq2seq_loss(model: Seq2Seq, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    src, mask, tgt_in, targets = batch
    return model(src, tgt_in, targets, src_mask=mask)[1]


def heldout_loss(model: Seq2Seq, vocab: SymbolVocab, pairs: list[tuple[str, str]]) -> float:
    """Mean cross-entropy per target token (10 characters and [EOS]) with teacher forcing."""
    total = 0.0
    for start in range(0, len(pairs), 256):
        chunk = pairs[start : start + 256]
        total += seq2seq_loss(model, encode_batch(chunk, vocab)).item() * len(chunk)
    return total / len(pairs)


def train(task: DatesTask, cfg: TrainConfig, out_dir: Path, **run) -> dict:
    """Train on generated training days; report exact match on the held-out days.
    `run`: log, progress, resume, stop_after (`tasks/run.py: train_task`)."""
    torch.manual_seed(cfg.seed)
    vocab = task.vocab()
    model = task.model(vocab)
    test = heldout_pairs(task.n_test)

    def evaluate() -> dict:
        return {
            "heldout_exact_match": exact_match(model, vocab, test),
            "heldout_loss": heldout_loss(model, vocab, test),
        }

    extra = {"n_heldout": len(test)}
    batches = sampler(vocab)
    return train_task(
        "dates", model, vocab, cfg, out_dir, batches, seq2seq_loss, evaluate, extra, **run
    )
