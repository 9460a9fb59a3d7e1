"""An ensemble of E rate networks held as tensors with a leading network axis.

Shapes follow SPEC 1.1: ``wi`` (E, N_in, N), ``wrec`` (E, N, N) with row i holding the weights
into unit i, ``wo`` (E, N, N_out), bias ``b`` and initial state ``x0`` (E, N). The initial
connectivity ``w0`` is kept beside the current ``wrec`` so that dW = wrec - w0 is always at hand.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from randstruct.engine import constraints, kernels
from randstruct.engine.noise import NoiseSource
from randstruct.engine.options import ModelOptions
from randstruct.engine.seeding import member_rng
from randstruct.errors import UserInputError

PARAMS = ("wi", "wrec", "wo", "b", "x0")


def draw_w0(n: int, g: float, seed: int) -> np.ndarray:
    """W0 = g J with J_ij ~ N(0, 1/N) (SPEC 1.2), float64."""
    return constraints.draw_w0(n, g, seed)[0]


def draw_vectors(n: int, n_in: int, n_out: int, g: float, seed: int,
                 readout: str = "small") -> tuple[np.ndarray, np.ndarray]:
    """Input (N_in, N) and output (N, N_out) weights of SPEC 1.2, float64.

    Columns of an N x (N_in + N_out) Gaussian matrix are normalised to unit length and scaled by
    sqrt(N); the output columns are further divided by N (readout "small": entries O(1/N)) or by
    sqrt(N) (readout "large": unit-norm columns, entries O(1/sqrt(N))). No orthogonalisation.
    """
    v = member_rng(seed, g, "vectors").standard_normal((n, n_in + n_out))
    v *= np.sqrt(n) / np.linalg.norm(v, axis=0)
    return v[:, :n_in].T.copy(), v[:, n_in:] / (n if readout == "small" else np.sqrt(n))


def check_grid(n: int, g, seeds, nonlinearity: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (g x seed) grid; ``seeds`` is a count or a list. Returns (g values, seeds)."""
    kernels.check_nonlinearity(nonlinearity)
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise UserInputError(f"N must be an integer >= 2, got {n}")
    gs = np.atleast_1d(np.asarray(g, dtype=float))
    if gs.size < 1 or np.any(gs < 0) or not np.all(np.isfinite(gs)):
        raise UserInputError(f"g must be finite numbers >= 0, got {gs.tolist()}")
    if np.isscalar(seeds):
        if int(seeds) != seeds or seeds < 1:
            raise UserInputError(f"seeds must be a count >= 1 or a list of integers >= 0, got {seeds}")
        seed_list = np.arange(int(seeds))
    else:
        seed_list = np.asarray(seeds, dtype=np.int64)
        if seed_list.size < 1 or np.any(seed_list < 0):
            raise UserInputError(f"seeds must be a count >= 1 or a list of integers >= 0, got {list(seeds)}")
    # a repeated value would train the same network twice and count it as two samples
    same_g = np.isclose(np.diff(np.sort(gs)), 0.0, rtol=0, atol=1e-9)
    if same_g.any():
        raise UserInputError(f"g lists {np.sort(gs)[1:][same_g][0]:g} twice; each gain once, please "
                             f"(got {gs.tolist()})")
    if np.unique(seed_list).size < seed_list.size:
        dup = next(s for s in seed_list if np.count_nonzero(seed_list == s) > 1)
        raise UserInputError(f"seeds list {int(dup)} twice; each seed once, please (got {seed_list.tolist()})")
    return gs, seed_list


def check_dt(dt) -> float:
    """The Euler step in units of tau, in (0, 1] like every task's."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.floating, np.integer)) or not 0 < dt <= 1:
        raise UserInputError(f"dt must be a number in (0, 1] (units of tau), got {dt!r}")
    return float(dt)


@dataclass
class Ensemble:
    """E independent networks; member e has gain ``g[e]`` and sample index ``seed[e]``."""

    wi: torch.Tensor
    wrec: torch.Tensor
    wo: torch.Tensor
    b: torch.Tensor
    x0: torch.Tensor
    w0: torch.Tensor
    g: np.ndarray
    seed: np.ndarray
    nonlinearity: str = "tanh"
    options: ModelOptions = ModelOptions()
    sign: torch.Tensor | None = None  # (E, N) column signs under Dale's law (constraints)
    mask: torch.Tensor | None = None  # (E, N, N) 0/1 connection mask under sparsity

    def __post_init__(self) -> None:
        kernels.check_nonlinearity(self.nonlinearity)
        e, n = self.wrec.shape[0], self.wrec.shape[-1]
        expected = {
            "wi": (e, None, n), "wrec": (e, n, n), "wo": (e, n, None),
            "b": (e, n), "x0": (e, n), "w0": (e, n, n),
            **{k: v for k, v in (("sign", (e, n)), ("mask", (e, n, n))) if getattr(self, k) is not None},
        }
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if len(got) != len(shape) or any(s is not None and s != t for s, t in zip(shape, got)):
                want = tuple("*" if s is None else s for s in shape)
                raise UserInputError(f"{name} must have shape {want}, got {got}")
        if len(self.g) != e or len(self.seed) != e:
            raise UserInputError(f"g and seed need one entry per network ({e}), got {len(self.g)}, {len(self.seed)}")

    # ---------------------------------------------------------------- construction
    @classmethod
    def init(
        cls,
        n: int,
        g: Sequence[float] | float,
        seeds: Sequence[int] | int,
        n_in: int,
        n_out: int,
        nonlinearity: str = "tanh",
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        shared_vector: bool = False,
        x0_from_input: bool = False,
        options: ModelOptions = ModelOptions(),
    ) -> "Ensemble":
        """The (g x seed) grid of SPEC 1.2 draws, g outer, seed inner.

        ``shared_vector`` uses one unit-norm x sqrt(N) vector as the input weights and (divided by
        N) as the output weights, and ``x0_from_input`` starts every trial from that input vector
        (x0 = v, an impulse through the input at t = 0), as the cosine experiment does (SPEC 7.1).
        ``options`` (noise, readout, Dale's law, sparsity) are shared by every member.
        """
        gs, seed_list = check_grid(n, g, seeds, nonlinearity)
        if shared_vector and n_in != n_out:
            raise UserInputError(f"shared_vector needs n_in == n_out, got {n_in} and {n_out}")
        grid_g = np.repeat(gs, seed_list.size)
        grid_seed = np.tile(seed_list, gs.size)
        w0s, wis, wos, masks = [], [], [], []
        for gi, si in zip(grid_g, grid_seed):
            w0, mask = constraints.draw_w0(n, gi, si, options)
            w0s.append(torch.as_tensor(w0, dtype=dtype))
            masks.append(mask)
            wi, wo = draw_vectors(n, n_in, 0 if shared_vector else n_out, gi, si, options.readout)
            if shared_vector:
                wo = wi.T / (n if options.readout == "small" else np.sqrt(n))
            wis.append(torch.as_tensor(wi, dtype=dtype))
            wos.append(torch.as_tensor(wo, dtype=dtype))
        w0 = torch.stack(w0s).to(device)
        wi = torch.stack(wis).to(device)
        e = len(grid_g)
        if x0_from_input and n_in != 1:
            raise UserInputError(f"x0_from_input needs a single input vector, got n_in = {n_in}")
        sign = None if options.dale is None else torch.as_tensor(
            np.tile(constraints.column_signs(n, options.dale), (e, 1)), dtype=dtype, device=device)
        mask = None if options.sparsity == 0 else torch.as_tensor(np.stack(masks), dtype=dtype, device=device)
        return cls(
            wi=wi, wrec=w0.clone(), wo=torch.stack(wos).to(device),
            b=torch.zeros(e, n, dtype=dtype, device=device),
            x0=wi[:, 0].clone() if x0_from_input else torch.zeros(e, n, dtype=dtype, device=device),
            w0=w0, g=grid_g, seed=grid_seed, nonlinearity=nonlinearity, options=options, sign=sign, mask=mask,
        )

    @classmethod
    def from_arrays(
        cls,
        wrec: np.ndarray,
        wi: np.ndarray,
        wo: np.ndarray,
        b: np.ndarray | None = None,
        x0: np.ndarray | None = None,
        w0: np.ndarray | None = None,
        g: Sequence[float] | None = None,
        seed: Sequence[int] | None = None,
        nonlinearity: str = "tanh",
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        options: ModelOptions = ModelOptions(),
    ) -> "Ensemble":
        """Copies of user-supplied weights (training never changes the caller's arrays); a single
        network may omit the leading E axis. ``wrec`` is taken as the recurrent matrix itself (no
        Dale signs or mask are applied): what a run stores."""

        def t(a, ndim):
            a = torch.tensor(np.asarray(a), dtype=dtype, device=device)
            return a[None] if a.ndim == ndim - 1 else a

        wrec_t = t(wrec, 3)
        e, n = wrec_t.shape[0], wrec_t.shape[-1]
        zeros = torch.zeros(e, n, dtype=dtype, device=device)
        w0_t = wrec_t.clone() if w0 is None else t(w0, 3)
        return cls(
            wi=t(wi, 3), wrec=wrec_t, wo=t(wo, 3),
            b=zeros.clone() if b is None else t(b, 2), x0=zeros.clone() if x0 is None else t(x0, 2),
            w0=w0_t, g=np.full(e, np.nan) if g is None else np.atleast_1d(np.asarray(g, dtype=float)),
            seed=np.arange(e) if seed is None else np.atleast_1d(seed),
            nonlinearity=nonlinearity, options=options,
        )

    # ---------------------------------------------------------------- properties
    @property
    def size(self) -> int:
        return self.wrec.shape[0]

    @property
    def n(self) -> int:
        return self.wrec.shape[-1]

    @property
    def n_in(self) -> int:
        return self.wi.shape[1]

    @property
    def n_out(self) -> int:
        return self.wo.shape[-1]

    @property
    def dtype(self) -> torch.dtype:
        return self.wrec.dtype

    @property
    def device(self) -> torch.device:
        return self.wrec.device

    @property
    def w(self) -> torch.Tensor:
        """The recurrent matrix the dynamics use: ``wrec`` under the Dale signs and the mask."""
        return constraints.effective(self.wrec, self.sign, self.mask)

    @property
    def dw(self) -> torch.Tensor:
        return self.w - self.w0

    def params(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in PARAMS}

    def replace(self, **changes) -> "Ensemble":
        return replace(self, **changes)

    def clone(self) -> "Ensemble":
        return self.replace(**{k: v.clone() for k, v in self.params().items()}, w0=self.w0.clone())

    def select(self, index) -> "Ensemble":
        """Sub-ensemble of the members at ``index`` (int, slice, list or boolean mask)."""
        idx = np.arange(self.size)[index]
        idx = np.atleast_1d(idx)
        ti = torch.as_tensor(idx, device=self.device)
        picked = {k: v.index_select(0, ti) for k, v in self.params().items()}
        fixed = {k: None if getattr(self, k) is None else getattr(self, k).index_select(0, ti) for k in ("sign", "mask")}
        return self.replace(**picked, **fixed, w0=self.w0.index_select(0, ti), g=self.g[idx], seed=self.seed[idx])

    # ---------------------------------------------------------------- simulation
    def simulate(self, inputs, dt: float, return_rates: bool = False, noise_seed: int | None = None,
                 return_states: bool = False):
        """Run every member on ``inputs``; batch-first in, batch-first out.

        ``inputs`` is (B, K, N_in), shared by all members, or (E, B, K, N_in). Returns outputs
        (E, B, K, N_out), then with ``return_rates`` the rates phi(x[1..K]) (E, B, K, N) and with
        ``return_states`` the states x[1..K]; the outputs read the rates or the states as the
        options say.
        Without ``noise_seed`` the networks run without noise; with it, with the noise of their
        options, drawn from ``member_rng(seed, g, "sim_noise", noise_seed)``.
        """
        dt = check_dt(dt)
        u, noise = self._noisy(self._inputs(inputs), dt, noise_seed)
        trace = return_rates or return_states
        with torch.no_grad():
            res = kernels.forward(u, self.wi, self.w, self.wo, self.b, self.x0, dt, self.nonlinearity,
                                  keep_trace=trace, readout_from=self.options.readout_from,
                                  keep_states=return_states, **noise)
        if not trace:
            return from_kernel_layout(res)
        out = [from_kernel_layout(res.outputs)]
        if return_rates:
            out.append(from_kernel_layout(res.aug[:, 1:, :, :self.n]))
        if return_states:
            out.append(from_kernel_layout(res.states))
        return tuple(out)

    def _noisy(self, u: torch.Tensor, dt: float, noise_seed: int | None) -> tuple[torch.Tensor, dict]:
        """The inputs with input noise and the other noise as kernel arguments (none without a seed)."""
        if noise_seed is None or not self.options.noisy:
            return u, {}
        source = NoiseSource(self.options, dt, self.n, self.dtype != torch.float64)
        rngs = [member_rng(int(s), float(g), "sim_noise", int(noise_seed)) for g, s in zip(self.g, self.seed)]
        host = u.cpu().numpy().astype(np.float32 if source.float32 else np.float64)
        extra = source.make(rngs, host)
        noise = {name: torch.as_tensor(a, dtype=self.dtype, device=self.device)
                 for name, a in zip(source.names(), extra)}
        return torch.as_tensor(host, dtype=self.dtype, device=self.device), noise

    def _inputs(self, inputs) -> torch.Tensor:
        u = to_kernel_layout(inputs, self.size, self.dtype, self.device)
        if u.shape[-1] != self.n_in:
            raise UserInputError(f"inputs have {u.shape[-1]} channels but the networks have {self.n_in} inputs")
        return u

    def loss(self, inputs, targets, mask, dt: float, loss: str = "mse") -> torch.Tensor:
        """Masked MSE (SPEC 1.3) or cross-entropy of every member (E,); arrays as in :meth:`simulate`."""
        return self.evaluate(inputs, targets, mask, dt, loss)[0]

    def evaluate(self, inputs, targets, mask, dt: float, loss: str = "mse", decision=None,
                 noise_seed: int | None = None):
        """(loss (E,), decision accuracy (E,) or None): the accuracy where ``decision`` marks the
        decision steps (B, K, 1) or (E, B, K, 1) of a task with labels; noise as in :meth:`simulate`."""
        if loss not in kernels.LOSSES:
            raise UserInputError(f"unknown loss {loss!r}; allowed: {', '.join(kernels.LOSSES)}")
        dt = check_dt(dt)
        u, noise = self._noisy(self._inputs(inputs), dt, noise_seed)
        tgt = to_kernel_layout(targets, self.size, self.dtype, self.device)
        msk = to_kernel_layout(mask, self.size, self.dtype, self.device)
        for name, t in (("targets", tgt), ("mask", msk)):
            if t.shape[1] != u.shape[1] or t.shape[2] != u.shape[2] or t.shape[-1] != self.n_out:
                raise UserInputError(f"{name} must be (batch {u.shape[2]}, time {u.shape[1]}, {self.n_out} outputs) "
                                     f"like the inputs, got {tuple(t.transpose(1, 2).shape)}")
        with torch.no_grad():
            out = kernels.forward(u, self.wi, self.w, self.wo, self.b, self.x0, dt, self.nonlinearity,
                                  keep_trace=False, readout_from=self.options.readout_from, **noise)
        value = kernels.LOSSES[loss](out, tgt, msk)[0]
        if decision is None:
            return value, None
        dec = to_kernel_layout(decision, self.size, self.dtype, self.device)
        return value, kernels.decision_accuracy(out, tgt, dec)


def to_kernel_layout(a, n_net: int, dtype: torch.dtype, device) -> torch.Tensor:
    """(B, K, C) shared or (E, B, K, C) per member -> contiguous (E, K, B, C)."""
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a, dtype=dtype, device=device)
    if t.ndim == 3:
        t = t[None].expand(n_net, *t.shape)
    if t.ndim != 4 or t.shape[0] != n_net:
        raise UserInputError(
            f"arrays must be (batch, time, channels) or ({n_net}, batch, time, channels), got {tuple(t.shape)}")
    return t.transpose(1, 2).contiguous()


def from_kernel_layout(t: torch.Tensor) -> torch.Tensor:
    """(E, K, B, C) -> batch-first (E, B, K, C)."""
    return t.transpose(1, 2).contiguous()
