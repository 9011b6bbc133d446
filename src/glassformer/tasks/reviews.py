"""Task `sentiment`: is a templated product review positive or negative? (an encoder classifier)

The reviews are generated here, from word lists and templates where word order matters:

    "the camera is really excellent"                          -> positive
    "the camera is not excellent"                             -> negative   (negation)
    "i expected the hotel to be awful but it was superb"      -> positive   (contrast: 2nd clause)
    "great screen but the battery is never reliable"          -> negative

A bag of words cannot tell the second from the first apart (same words, plus "not"), nor
which clause of a "but" sentence counts; a bidirectional encoder reads the whole sentence and
classifies it from the `[CLS]` position. Held-out: 2,000 sentences from a separate random
stream, every one of which is excluded from training.
"""

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from glassformer.models.encoder import Encoder, EncoderConfig
from glassformer.tasks.run import python_rng, train_task
from glassformer.tokenizers.symbols import CLS, PAD, SymbolVocab
from glassformer.train.config import TrainConfig

PRODUCTS = "phone laptop movie book hotel restaurant camera game album chair jacket printer".split()
PARTS = "screen battery service story sound design price plot staff keyboard food ending".split()
POSITIVE = "great excellent wonderful fantastic good lovely superb reliable brilliant solid".split()
NEGATIVE = "terrible awful bad poor boring broken disappointing horrible useless flimsy".split()
INTENSIFIERS = ["", "really", "very", "truly", "quite", "absolutely"]
NEGATIONS = ["not", "never"]


def _adjective(rng: random.Random) -> tuple[str, int]:
    label = rng.randint(0, 1)
    return rng.choice(POSITIVE if label else NEGATIVE), label


def _phrase(rng: random.Random) -> tuple[str, int]:
    """'[intensifier] adjective' or 'not adjective' (negation flips the label)."""
    adj, label = _adjective(rng)
    if rng.random() < 0.4:
        return f"{rng.choice(NEGATIONS)} {adj}", 1 - label
    return " ".join(w for w in (rng.choice(INTENSIFIERS), adj) if w), label


def review(rng: random.Random) -> tuple[str, int]:
    """One (sentence, label) pair, label 1 = positive."""
    product, part = rng.choice(PRODUCTS), rng.choice(PARTS)
    kind = rng.randrange(5)
    if kind == 0:
        phrase, label = _phrase(rng)
        return f"the {product} is {phrase}", label
    if kind == 1:
        first, _ = _adjective(rng)
        phrase, label = _phrase(rng)
        return f"i expected the {product} to be {first} but it was {phrase}", label
    if kind == 2:
        first, _ = _adjective(rng)
        phrase, label = _phrase(rng)
        return f"{first} {part} but the {rng.choice(PARTS)} is {phrase}", label
    if kind == 3:
        phrase, label = _phrase(rng)
        second = rng.choice(POSITIVE if label else NEGATIVE)
        return f"the {part} of this {product} was {phrase} and {second}", label
    phrase, label = _phrase(rng)
    return f"honestly the {product} was {phrase}", label


@dataclass
class SentimentTask:
    max_steps: int = 800
    batch_size: int = 64
    n_embd: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_test: int = 2000
    lr: float = 1e-3

    def vocab(self) -> SymbolVocab:
        words = PRODUCTS + PARTS + POSITIVE + NEGATIVE + INTENSIFIERS[1:] + NEGATIONS
        words += "the is i expected to be but it was and of this honestly".split()
        return SymbolVocab.of_words(words)

    def model(self, vocab: SymbolVocab) -> Encoder:
        cfg = EncoderConfig(
            vocab_size=vocab.vocab_size,
            block_size=24,
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            dropout=0.0,
            type_vocab_size=0,
            pad_id=PAD,
            mlm_head=False,
            pooler=True,
            n_classes=2,
        )
        return Encoder(cfg)


def encode_batch(pairs: list[tuple[str, int]], vocab: SymbolVocab):
    """[CLS] words [PAD]... (B, T), the padding mask (B, T) and the labels (B,)."""
    rows = [[CLS, *vocab.encode(s)] for s, _ in pairs]
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), PAD, dtype=torch.long)  # (B, T)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
    return ids, (ids != PAD).long(), torch.tensor([label for _, label in pairs])


def accuracy(model: Encoder, vocab: SymbolVocab, pairs: list[tuple[str, int]]) -> float:
    ids, mask, labels = encode_batch(pairs, vocab)
    logits, _ = model.classify(ids, mask)
    return (logits.argmax(-1) == labels).float().mean().item()


def classify_loss(model: Encoder, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    ids, mask, labels = batch
    return model.classify(ids, mask, labels)[1]


def train(task: SentimentTask, cfg: TrainConfig, out_dir: Path, **run) -> dict:
    """Train on generated reviews; report accuracy on held-out sentences never trained on.
    `run`: log, progress, resume, stop_after (`tasks/run.py: train_task`)."""
    torch.manual_seed(cfg.seed)
    vocab = task.vocab()
    model = task.model(vocab)
    test_rng = random.Random(10_000)
    test = list({s: (s, y) for s, y in (review(test_rng) for _ in range(4 * task.n_test))}.values())
    test = test[: task.n_test]
    held_out = {s for s, _ in test}

    def train_example(rng: random.Random) -> tuple[str, int]:
        while True:
            pair = review(rng)
            if pair[0] not in held_out:
                return pair

    def batches(n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        rng = python_rng(gen)
        return encode_batch([train_example(rng) for _ in range(n)], vocab)

    def evaluate() -> dict:
        return {"heldout_accuracy": accuracy(model, vocab, test)}

    extra = {"n_heldout": len(test)}
    return train_task(
        "sentiment", model, vocab, cfg, out_dir, batches, classify_loss, evaluate, extra, **run
    )
