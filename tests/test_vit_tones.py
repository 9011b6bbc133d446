"""Audio is patches too: a tone's spectrogram peaks at its frequency, and the vision
transformer of `train --task tones` learns to name the pitch."""

import random

import pytest
import torch

from glassformer import checkpoint
from glassformer.cli import main
from glassformer.tasks import tones


@pytest.mark.parametrize("k", range(len(tones.TONES)))
def test_a_pure_tone_lights_up_its_frequency_row(k):
    t = torch.arange(tones.LENGTH) / tones.RATE
    image = tones.spectrogram(torch.sin(2 * torch.pi * tones.TONES[k] * t)[None])
    assert image.shape == (1, 1, tones.N_FFT // 2 + 1, tones.FRAMES) == (1, 1, 16, 16)
    row = image[0, 0].mean(dim=1).argmax().item()  # the loudest frequency bin
    assert abs(row - tones.TONES[k] / (tones.RATE / tones.N_FFT)) <= 0.5
    assert tones.spectrogram(torch.zeros(1, tones.LENGTH)).eq(-1).all()  # silence


def test_clips_are_seeded_and_labelled():
    a, b = tones.clip(random.Random(3)), tones.clip(random.Random(3))
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and a[0].shape == (tones.LENGTH,)


def test_the_task_learns_the_pitches(tmp_path):
    out = tmp_path / "tones"
    argv = ["train", "--task", "tones", "--max-steps", "150", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    results = checkpoint.read_meta(out)["results"]
    assert results["test_accuracy"] >= 0.8  # chance: 1/8
    model, vocab = checkpoint.load(out, family="vit")
    assert model.config.image_size == 16 and vocab.decode([5]) == "150Hz"
