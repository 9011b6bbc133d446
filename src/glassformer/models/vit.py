"""Vision transformer (ViT, Dosovitskiy et al. 2020): an image as a sequence of patch tokens.

    images (B, ch, H, W) --patch embedding (nn/patches.py)--> (B, N, C) + positions
        --[class token] + patches--> (B, 1 + N, C)
        --[Block, no causal mask] x n_layer--> final norm
        --class token's vector | mean of the patches' vectors (B, C)--Linear--> logits

Nothing here is new except the first line: the blocks are the same `Block`s the GPT and the
encoder use (pre-norm, `causal=False`: every patch sees every other), and the position
schemes come from the same registry (nn/positions.py), including two that know a patch's
row and column ("learned-2d", "sinusoidal-2d"). The class token is one learned vector put in
front of the patches; it has no pixels of its own, so what the head reads from it is what it
gathered by attention (`glassformer inspect attention --image N` draws where it looks).
With `pool="mean"` there is no class token and the head reads the mean of the patches.

    >>> vit = VisionTransformer(VitConfig(image_size=8, patch_size=2, n_layer=1, n_embd=16))
    >>> vit.config.block_size, vit(torch.zeros(3, 1, 8, 8))[0].shape
    (16, torch.Size([3, 10]))
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from glassformer.core.fields import option
from glassformer.nn.block import Block
from glassformer.nn.config import TransformerConfig
from glassformer.nn.hooks import HookPoint, name_hook_points
from glassformer.nn.init import init_normal
from glassformer.nn.norm import make_norm
from glassformer.nn.patches import PatchEmbedding
from glassformer.nn.positions import POSITIONS


@dataclass
class VitConfig(TransformerConfig):
    """The shared transformer fields with a ViT's defaults, plus the image's own ones.

    `block_size` is derived: the number of patches. The text families' `vocab_size`,
    `tie_weights` and `logit_softcap` do not apply (a ViT reads pixels, not token ids).
    """

    vocab_size: int = option(1, "unused: a vision transformer reads pixels, not token ids")
    block_size: int = option(
        16, "patches of one image: (image_size / patch_size)^2 (set from those)"
    )
    image_size: int = option(8, "height and width of the (square) images", range="[1, 65536]")
    patch_size: int = option(
        2, "side of the square patches the image is cut into (one token each)", range="[1, 65536]"
    )
    channels: int = option(1, "colour channels of the images (1: grey)", range="[1, 64]")
    n_classes: int = option(10, "classes the head tells apart", range=f"[1, {2**20}]")
    pool: str = option(
        "cls",
        "what the head reads: a learned class token put in front of the patches, or the mean "
        "of the patches' final vectors",
        ("cls", "mean"),
    )
    pos_emb: str = option(
        "learned",
        "position signal: per-patch learned table, row + column tables (learned-2d), "
        "sinusoidal tables of the patch index or of row and column (sinusoidal-2d), rotary, "
        "alibi (a penalty on the distance in patch order), none",
        tuple(POSITIONS),
    )
    causal: bool = option(False, "mask the future (a ViT sees the whole image: False)")
    tie_weights: bool = option(False, "unused: a ViT has no token embedding to tie")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_size % self.patch_size:
            raise ValueError(
                f"model.patch_size ({self.patch_size}) must divide model.image_size "
                f"({self.image_size})"
            )
        self.block_size = self.grid[0] * self.grid[1]

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of patches: what the 2-D position schemes read."""
        side = self.image_size // self.patch_size
        return side, side


class VisionTransformer(nn.Module):
    """`VisionTransformer(config)(images, labels=None) -> (logits (B, n_classes), loss)`."""

    def __init__(self, config: VitConfig):
        super().__init__()
        self.config = config
        C = config.n_embd
        self.patch_emb = PatchEmbedding(config.channels, config.patch_size, C, config.bias)
        self.embed_scale = config.embedding_scale  # sqrt(C) beside a sinusoidal table, else 1
        self.positions = POSITIONS[config.pos_emb]  # nn/positions.py
        self.pos_emb = self.positions.make_embedding(config)  # added to the patches, or None
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C)) if config.pool == "cls" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = make_norm(config.norm, C, config.bias, config.norm_eps)
        self.head = nn.Linear(C, config.n_classes)
        self.hook_embed = HookPoint()  # (B, T, C) patches + positions (+ class token first)
        self.hook_final = HookPoint()  # (B, T, C) after the final norm
        self._init_weights()
        self.hook_points = name_hook_points(self)

    def _init_weights(self) -> None:
        """N(0, 0.02) for Linear weights and the class token, zero biases (as the encoder);
        a patch embedding scaled by sqrt(C) starts at N(0, 1/C) (as scaled token embeddings)."""
        init_normal(self, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=0.02)
        if self.embed_scale != 1.0:
            nn.init.normal_(self.patch_emb.proj.weight, std=self.config.n_embd**-0.5)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, ch, H, W) -> the final vectors (B, T, C): the class token first (with
        `pool="cls"`, T = 1 + N), then the N patches in rows."""
        c = self.config
        if images.shape[1:] != (c.channels, c.image_size, c.image_size):
            raise ValueError(
                f"expected images of shape (B, {c.channels}, {c.image_size}, {c.image_size}), "
                f"got {tuple(images.shape)}"
            )
        x = self.patch_emb(images) * self.embed_scale  # (B, N, C)
        N = x.size(1)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(N, device=x.device))  # (N, C) broadcast over B
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(x.size(0), -1, -1), x), dim=1)  # (B, 1+N, C)
        x = self.drop(self.hook_embed(x))
        pos = torch.arange(x.size(1), device=x.device)  # (T,): rotary reads it, tables do not
        for block in self.blocks:
            x = block(x, pos)
        return self.hook_final(self.ln_f(x))

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Class logits (B, n_classes) and, given labels (B,), the cross-entropy loss."""
        h = self.encode(images)  # (B, T, C)
        pooled = h[:, 0] if self.cls_token is not None else h.mean(dim=1)  # (B, C)
        logits = self.head(pooled)
        loss = None if labels is None else F.cross_entropy(logits.float(), labels)
        return logits, loss
