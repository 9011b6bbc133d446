"""Task `tones`: which of eight pitches is this sound? Audio is patches too.

A sound becomes an image by its spectrogram: cut the signal into short overlapping windows,
take each window's spectrum (a short-time Fourier transform), and stack the magnitudes, one
column per window, one row per frequency. That picture is cut into patches and read by the
same vision transformer as the digits (models/vit.py):

    signal (270 samples at 2 kHz) --STFT (30-sample Hann windows, hop 16)--> (16 freq, 16 time)
        --log(1 + magnitude)--> one 16 x 16 image --4 x 4 patches--> 16 tokens --ViT--> tone

Each example is one of eight sine tones (150, 250, ..., 850 Hz) with a random amplitude and
phase, sounding for a random part of the clip, under white noise. The test set is 500 clips
from a separate seeded stream.

    glassformer train --task tones                    # runs/task-tones
"""

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from glassformer.models.vit import VisionTransformer, VitConfig
from glassformer.tasks.digits import accuracy, classify_loss
from glassformer.tasks.run import python_rng, train_task
from glassformer.tokenizers.symbols import SymbolVocab
from glassformer.train.config import TrainConfig

RATE, N_FFT, HOP, FRAMES = 2000, 30, 16, 16  # 2 kHz; 16 frequency bins x 16 windows
LENGTH = N_FFT + HOP * (FRAMES - 1)  # 270 samples
TONES = [150 + 100 * k for k in range(8)]  # Hz: each in its own frequency bin (66.7 Hz wide)


def clip(rng: random.Random) -> tuple[torch.Tensor, int]:
    """One (LENGTH,) signal: tone k at a random amplitude and phase over part of the clip,
    plus white noise; and its label k."""
    k = rng.randrange(len(TONES))
    t = torch.arange(LENGTH) / RATE  # seconds
    start = rng.randrange(LENGTH // 2)
    stop = rng.randrange(start + LENGTH // 4, LENGTH + 1)
    tone = rng.uniform(0.3, 1.0) * torch.sin(2 * torch.pi * TONES[k] * t + rng.uniform(0, 6.3))
    tone[:start] = 0
    tone[stop:] = 0
    noise = torch.tensor([rng.gauss(0, 0.3) for _ in range(LENGTH)])
    return tone + noise, k


def spectrogram(signals: torch.Tensor) -> torch.Tensor:
    """(B, LENGTH) signals -> (B, 1, 16, 16) spectrograms log(1 + |STFT|) / 2 - 1 (silence
    is -1; rows: frequency, low at the top; columns: time)."""
    window = torch.hann_window(N_FFT)
    spec = torch.stft(signals, N_FFT, HOP, window=window, center=False, return_complex=True)
    mag = torch.log1p(spec.abs())  # (B, 16, 16)
    return (mag / 2 - 1)[:, None]  # (B, 1, 16, 16)


def batch(pairs: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    signals = torch.stack([s for s, _ in pairs])  # (B, LENGTH)
    return spectrogram(signals), torch.tensor([k for _, k in pairs])


@dataclass
class TonesTask:
    max_steps: int = 300
    batch_size: int = 64
    n_embd: int = 32
    n_layer: int = 2
    n_head: int = 2
    n_test: int = 500
    lr: float = 2e-3

    def model(self) -> VisionTransformer:
        cfg = VitConfig(
            image_size=FRAMES,
            patch_size=4,
            n_classes=len(TONES),
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            dropout=0.0,
        )
        return VisionTransformer(cfg)


def train(task: TonesTask, cfg: TrainConfig, out_dir: Path, **run) -> dict:
    """Train on generated clips; report accuracy on 500 held-out clips.
    `run`: log, progress, resume, stop_after (`tasks/run.py: train_task`)."""
    torch.manual_seed(cfg.seed)
    model = task.model()
    test_rng = random.Random(10_000)
    test_images, test_labels = batch([clip(test_rng) for _ in range(task.n_test)])
    vocab = SymbolVocab.of_words([f"{hz}Hz" for hz in TONES])

    def batches(n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        rng = python_rng(gen)
        return batch([clip(rng) for _ in range(n)])

    def evaluate() -> dict:
        return {"test_accuracy": accuracy(model, test_images, test_labels)}

    extra = {"n_test": task.n_test}
    return train_task(
        "tones", model, vocab, cfg, out_dir, batches, classify_loss, evaluate, extra, **run
    )
