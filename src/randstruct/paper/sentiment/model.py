"""The 2-layer LSTM sentiment classifier of SPEC 8.2.

The two layers are two single-layer ``nn.LSTM`` modules so that the inter-layer dropout can draw
its masks from an explicit ``torch.Generator`` (``nn.LSTM``'s built-in dropout uses the global
random state); without dropout the stack computes exactly what a 2-layer ``nn.LSTM`` computes.
Weight blocks are named as in a 2-layer ``nn.LSTM`` (``w_hh_l1`` = recurrent weights of layer 2),
gates stacked in PyTorch's order (input, forget, cell, output).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from randstruct.errors import UserInputError

# block name -> (layer module attribute, parameter name inside that single-layer LSTM)
BLOCKS = {
    "w_ih_l0": ("lstm0", "weight_ih_l0"), "w_hh_l0": ("lstm0", "weight_hh_l0"),
    "b_ih_l0": ("lstm0", "bias_ih_l0"), "b_hh_l0": ("lstm0", "bias_hh_l0"),
    "w_ih_l1": ("lstm1", "weight_ih_l0"), "w_hh_l1": ("lstm1", "weight_hh_l0"),
    "b_ih_l1": ("lstm1", "bias_ih_l0"), "b_hh_l1": ("lstm1", "bias_hh_l0"),
    "decoder_w": ("decoder", "weight"), "decoder_b": ("decoder", "bias"),
}
TRUNCATED = ("w_hh_l0", "w_ih_l1", "w_hh_l1")  # the three 4N x N blocks of SPEC 8.3


def trainable_count(n: int, emb_dim: int) -> int:
    """SPEC 8.2: layer 1 4N(E+N)+8N, layer 2 4N*2N+8N, decoder N+1 (893,185 for N=256, E=100)."""
    return 4 * n * (emb_dim + n) + 8 * n + 4 * n * 2 * n + 8 * n + n + 1


def _dropout(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    keep = torch.empty_like(x).bernoulli_(1.0 - p, generator=generator)
    return x * keep / (1.0 - p)


class SentimentLSTM(nn.Module):
    """Frozen embedding -> LSTM -> dropout -> LSTM -> last hidden state -> dropout -> linear logit."""

    def __init__(self, embedding: np.ndarray | torch.Tensor, n: int, dropout: float = 0.5,
                 seed_generator: torch.Generator | None = None) -> None:
        super().__init__()
        if n < 1:
            raise UserInputError(f"N must be >= 1, got {n}")
        if not 0 <= dropout < 1:
            raise UserInputError(f"dropout must be in [0, 1), got {dropout}")
        emb = torch.as_tensor(np.asarray(embedding, dtype=np.float32))
        self.n, self.emb_dim, self.p = n, emb.shape[1], dropout
        self.embedding = nn.Embedding.from_pretrained(emb, freeze=True)
        self.lstm0 = nn.LSTM(self.emb_dim, n, batch_first=True)
        self.lstm1 = nn.LSTM(n, n, batch_first=True)
        self.decoder = nn.Linear(n, 1)
        self.reset_parameters(seed_generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None) -> None:
        """PyTorch's default init drawn from ``generator``; layer-1 input weights U(+-1/sqrt(E))."""
        bound = 1.0 / math.sqrt(self.n)
        for name in BLOCKS:
            self.block(name).uniform_(-bound, bound, generator=generator)
        in_bound = 1.0 / math.sqrt(self.emb_dim)
        self.block("w_ih_l0").uniform_(-in_bound, in_bound, generator=generator)

    def block(self, name: str) -> nn.Parameter:
        module, attr = BLOCKS[name]
        return getattr(getattr(self, module), attr)

    def blocks(self) -> dict[str, torch.Tensor]:
        """Detached copies of all trainable blocks (the records of a run)."""
        return {name: self.block(name).detach().clone() for name in BLOCKS}

    @torch.no_grad()
    def set_blocks(self, values: dict[str, torch.Tensor | np.ndarray]) -> None:
        for name, value in values.items():
            target = self.block(name)
            target.copy_(torch.as_tensor(value, dtype=target.dtype).reshape(target.shape))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits of padded ``ids`` (batch, time) sorted by falling ``lengths``."""
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True)
        out0, _ = self.lstm0(packed)
        if self.training and self.p > 0:
            out0 = PackedSequence(_dropout(out0.data, self.p, generator), out0.batch_sizes,
                                  out0.sorted_indices, out0.unsorted_indices)
        _, (h, _) = self.lstm1(out0)
        last = h[-1]
        if self.training and self.p > 0:
            last = _dropout(last, self.p, generator)
        return self.decoder(last).squeeze(-1)
