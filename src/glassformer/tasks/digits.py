"""Task `digits`: which digit is this 8 x 8 picture? (a vision transformer, patches as tokens)

The data is scikit-learn's bundled copy of the UCI handwritten digits (`load_digits`: 1,797
greyscale images of 8 x 8 pixels, values 0..16, no download). One fixed shuffle (seed 0)
keeps 360 images (20%) as the test set; the model never trains on them. Each image is cut
into 2 x 2 patches, 16 tokens of 4 pixels (nn/patches.py), and a class token reads them
(models/vit.py). The model soon fits its 1,437 training images almost perfectly; dropout
0.1 and weight decay regularise it. Shifting the training images by a pixel, a common
augmentation, did worse on this budget (docs/families.md).

    glassformer train --task digits                   # runs/task-digits
    glassformer inspect attention --model runs/task-digits --image 0 --png

Measured results: docs/families.md.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from glassformer.errors import UserError
from glassformer.models.vit import VisionTransformer, VitConfig
from glassformer.tasks.run import train_task
from glassformer.tokenizers.symbols import SPECIALS, SymbolVocab
from glassformer.train.config import TrainConfig

SIDE, INK = 8, 16  # 8 x 8 images of values 0 (background) .. 16 (ink)
N_TEST, SPLIT_SEED = 360, 0


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels): images (n, 8, 8) in 0..16,
    always the same split (a shuffle with seed 0, the last 360 for testing)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.RandomState(SPLIT_SEED).permutation(len(digits.target))
    images, labels = digits.images[order], digits.target[order]
    return images[:-N_TEST], labels[:-N_TEST], images[-N_TEST:], labels[-N_TEST:]


def to_pixels(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(n, 8, 8) values 0..16 -> (n, 1, 8, 8) floats in [-1, 1], what the model reads."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    return (x / (INK / 2) - 1)[:, None]  # (n, 1, 8, 8)


def label_vocab() -> SymbolVocab:
    """The class names, saved as the folder's tokenizer: class c is symbol `SPECIALS + c`."""
    return SymbolVocab.of_words([str(d) for d in range(10)])


def class_name(vocab: SymbolVocab, c: int) -> str:
    return vocab.symbols[len(SPECIALS) + c]


def chosen_image(spec: str) -> tuple[np.ndarray, str]:
    """The image `--image SPEC` names: a test-split index ("3") or an .npy file of an 8 x 8
    array of values 0..16; returns the image and a sentence saying which it is."""
    if spec.lstrip("-").isdigit():
        _, _, images, labels = load_split()
        index = int(spec)
        if not 0 <= index < len(labels):
            raise UserError(
                f"--image {index} does not exist: the digits test split has images "
                f"0..{len(labels) - 1}; pass one of those or an .npy file"
            )
        return images[index], f"digits test image {index} (label {labels[index]})"
    file = Path(spec)
    if not file.is_file():
        raise UserError(f"no such image file: {spec}; pass a test index (--image 3) or an .npy")
    try:
        image = np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise UserError(f"{spec} is not a .npy array; save the image with numpy.save") from None
    if image.shape != (SIDE, SIDE) or not np.issubdtype(image.dtype, np.number):
        raise UserError(
            f"{spec} holds an array of shape {image.shape} ({image.dtype}); the digits model "
            f"reads one {SIDE} x {SIDE} array of numbers 0..{INK}"
        )
    if not np.isfinite(image).all() or image.min() < 0 or image.max() > INK:
        raise UserError(f"{spec} has values outside 0..{INK}; scale the image to 0..{INK}")
    return image.astype(np.float64), f"image file {spec}"


@dataclass
class DigitsTask:
    max_steps: int = 1500
    batch_size: int = 64
    n_embd: int = 64
    n_layer: int = 4
    n_head: int = 4
    patch_size: int = 2
    pos_emb: str = "learned"
    pool: str = "cls"
    dropout: float = 0.1
    lr: float = 2e-3

    def model(self) -> VisionTransformer:
        cfg = VitConfig(
            image_size=SIDE,
            patch_size=self.patch_size,
            n_classes=10,
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            pos_emb=self.pos_emb,
            pool=self.pool,
            dropout=self.dropout,
        )
        return VisionTransformer(cfg)


@torch.no_grad()
def accuracy(model: VisionTransformer, images: torch.Tensor, labels: torch.Tensor) -> float:
    return (model(images)[0].argmax(-1) == labels).float().mean().item()


def classify_loss(model: VisionTransformer, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    images, labels = batch
    return model(images, labels)[1]


def train(task: DigitsTask, cfg: TrainConfig, out_dir: Path, **run) -> dict:
    """Train on the 1,437 training images; report the accuracy on the 360 test images.
    `run`: log, progress, resume, stop_after (`tasks/run.py: train_task`)."""
    torch.manual_seed(cfg.seed)
    model = task.model()
    train_x, train_y, test_x, test_y = load_split()
    train_images, train_labels = to_pixels(train_x), torch.as_tensor(train_y)
    test_images, test_labels = to_pixels(test_x), torch.as_tensor(test_y)

    def batches(n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        rows = torch.randint(0, len(train_labels), (n,), generator=gen)
        return train_images[rows], train_labels[rows]

    def evaluate() -> dict:
        return {"test_accuracy": accuracy(model, test_images, test_labels)}

    extra = {"n_test": N_TEST, "n_train": len(train_labels)}
    return train_task(
        "digits", model, label_vocab(), cfg, out_dir, batches, classify_loss, evaluate, extra, **run
    )
