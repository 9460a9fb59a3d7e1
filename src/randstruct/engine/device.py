"""Which devices a run may ask for, checked before any work is done."""

from __future__ import annotations

import torch

from randstruct.errors import UserInputError


def check_device(device: str) -> None:
    """Refuse a device that is not a torch device name or that this machine does not have."""
    allowed = "cpu, cuda, cuda:INDEX"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserInputError(f"unknown device {device!r}; allowed: {allowed}") from None
    if dev.type not in ("cpu", "cuda"):
        raise UserInputError(f"unknown device {device!r}; allowed: {allowed}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"device {device!r} requested but CUDA is not available; allowed here: cpu")
