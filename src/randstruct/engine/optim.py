"""Adam and SGD for an ensemble: element-wise updates with a learning rate per member.

Members that diverged (``active`` false) get no update, so their weights stay at their last finite
values; Adam follows ``torch.optim.Adam``'s defaults (bias-corrected moments, eps outside the root).
"""

from __future__ import annotations

import torch

from randstruct.engine.config import TrainConfig
from randstruct.engine.model import Ensemble


def per_member(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape an (E,) tensor to broadcast against a parameter with leading E."""
    return x.view((-1,) + (1,) * (like.ndim - 1))


class EnsembleOptimizer:
    """The optimizer state of every trained parameter of an ensemble."""

    def __init__(self, ensemble: Ensemble, config: TrainConfig, lr: torch.Tensor):
        self.ensemble, self.config, self.lr = ensemble, config, lr
        self.moments = {
            p: (torch.zeros_like(getattr(ensemble, p)), torch.zeros_like(getattr(ensemble, p)))
            for p in config.trainable
        } if config.optimizer == "adam" else {}

    def proposal(self, grads: dict[str, torch.Tensor], active: torch.Tensor,
                 epoch_t: torch.Tensor) -> dict[str, torch.Tensor]:
        """The updated value of each parameter in ``grads`` (moments advance in place; the
        parameters themselves are left to the caller, which keeps only finite proposals)."""
        cfg, ens = self.config, self.ensemble
        zero = torch.zeros((), dtype=ens.dtype, device=active.device)
        if cfg.optimizer == "adam":
            (b1, b2), t = cfg.betas, epoch_t.to(torch.float64) + 1
            bc1 = (1 - torch.pow(b1, t)).to(ens.dtype)
            root_bc2 = (1 - torch.pow(b2, t)).sqrt().to(ens.dtype)
        new = {}
        for name, grad in grads.items():
            p = getattr(ens, name)
            grad = torch.where(per_member(active, grad), grad, zero)
            lr = per_member(self.lr, p)
            if cfg.optimizer == "sgd":
                new[name] = p - lr * grad
                continue
            m, v = self.moments[name]
            m.mul_(b1).add_(grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denom = (v.sqrt() / root_bc2).add_(cfg.eps)
            new[name] = p - (lr / bc1) * m / denom
        return new

    def state(self) -> dict:
        return {k: (m.cpu(), v.cpu()) for k, (m, v) in self.moments.items()}

    def load_state(self, state: dict) -> None:
        for k, (m, v) in state.items():
            self.moments[k][0].copy_(m)
            self.moments[k][1].copy_(v)
