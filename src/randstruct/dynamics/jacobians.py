"""The continuous flow of a rate network and its derivatives, batched over (member, state).

Flow (the Euler dynamics of SPEC 1.1 with dt -> 0, in units of tau):
    F(x) = -x + W phi(x) + W_in^T u + b,
with row i of W holding the weights into unit i. States are row vectors, so W phi(x) is
``phi(x) @ W^T``. The Jacobian is J(x) = -I + W diag(phi'(x)); the gradient of
q(x) = |F(x)|^2 / 2 is J^T F, written out so that no autograd graph is built per iteration.
"""

from __future__ import annotations

import torch

PHI = {"tanh": torch.tanh, "linear": lambda x: x, "relu": torch.relu,
       "softplus": lambda x: torch.logaddexp(x, torch.zeros_like(x))}  # log(1 + e^x) without overflow
DPHI = {"tanh": lambda x: 1 - torch.tanh(x) ** 2, "linear": torch.ones_like,
        "relu": lambda x: (x > 0).to(x.dtype),  # 0 at x = 0, as the training kernels take it
        "softplus": torch.sigmoid}


def phi(x: torch.Tensor, nonlinearity: str) -> torch.Tensor:
    return PHI[nonlinearity](x)


def dphi(x: torch.Tensor, nonlinearity: str) -> torch.Tensor:
    return DPHI[nonlinearity](x)


def drive(wi: torch.Tensor, b: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The constant part W_in^T u + b: ``wi`` (E, N_in, N), ``b`` (E, N), ``u`` (E, K, N_in) -> (E, K, N)."""
    return torch.baddbmm(b[:, None, :], u, wi)


def flow(x: torch.Tensor, wrec: torch.Tensor, const: torch.Tensor, nonlinearity: str) -> torch.Tensor:
    """F(x) for states ``x`` (E, K, N) of members with recurrent weights ``wrec`` (E, N, N)."""
    return torch.baddbmm(const - x, phi(x, nonlinearity), wrec.transpose(1, 2))


def q_and_grad(x, wrec, const, nonlinearity):
    """q = |F|^2 / 2 per state (E, K), its gradient J^T F = -F + phi'(x) * (F W) (E, K, N), and F."""
    f = flow(x, wrec, const, nonlinearity)
    grad = torch.bmm(f, wrec).mul_(dphi(x, nonlinearity)).sub_(f)
    return 0.5 * (f * f).sum(-1), grad, f


def jacobian(x: torch.Tensor, wrec: torch.Tensor, nonlinearity: str) -> torch.Tensor:
    """J = -I + W diag(phi'(x)) for states ``x`` (..., N) with matching ``wrec`` (..., N, N)."""
    n = x.shape[-1]
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    return wrec * dphi(x, nonlinearity)[..., None, :] - eye
