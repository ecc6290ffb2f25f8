"""Window scaling and output heads shared by neural forecasters (the LSTM forecaster).

**Scaling** (per input window, computed on its observed steps only, restored on output):
``mean``: ``loc = 0, scale = mean|y|`` (DeepAR); ``standard``: ``loc = mean(y), scale = std(y)``;
``robust``: ``loc = median(y), scale = IQR(y)``. A degenerate scale (all zeros, a constant window) falls back
to ``mean|y|`` and then to 1, so a flat history still gives finite inputs.

**Heads** turn the network's raw outputs ``[B, h, P]`` into forecasts. Each has ``n_outputs`` (``P``),
``step_loss(raw, y, loc, scale)`` (``[B, h]``; ``loss`` is its mean, optionally weighted per window), ``median``
and ``quantiles`` (levels in (0, 1)):

* :class:`PointHead` -- ``mae`` or ``mse`` on the scaled target; point forecasts only.
* :class:`QuantileHead` -- pinball loss ``sum_q rho_q(y - y_q)`` over configured quantiles (Wen et al. 2017,
  MQ-RNN); quantiles are ordered by construction: ``y_q1 = r_1``, ``y_qk = r_1 + sum_{j<=k} softplus(r_j)``.
* :class:`NormalHead`, :class:`StudentTHead`, :class:`NegativeBinomialHead` -- negative log-likelihood of a
  ``torch.distributions`` law (Salinas et al. 2020, DeepAR). Normal/Student-t act on the scaled target
  (an affine map, so ``NLL(y) = NLL(z) + log scale``); the negative binomial (counts) has
  ``mean = scale * softplus(r_1 + loc / scale)`` and ``var = mean + alpha * mean^2``.
  Quantiles are exact: the law's ``icdf`` (normal), or SciPy's quantile functions where torch has none
  (Student-t: ``scipy.special.stdtrit``; negative binomial: ``scipy.stats.nbinom.ppf``). A window's quantiles
  therefore depend on its own outputs only, not on the other windows of its batch, which keeps evaluation
  identical across batch sizes, exported graphs and the ranks of a distributed run. Only a law with neither
  falls back to ``n_samples`` draws. The median of the symmetric laws (normal, Student-t) is their location
  ``loc + scale * r_1``, exactly, so the recursive decoder's fed-back median needs no quantile function and the
  whole decoder exports as one graph.
* :class:`NonNegativeQuantileHead` -- the quantile head's pinball loss with quantiles non-negative by
  construction: ``y_q1 = scale * softplus(r_1 + loc / scale)``, then cumulative softplus steps.
* :class:`HurdleLogNormalHead` -- for non-negative targets with exact zeros (intermittent demand): a point mass
  ``pi`` at zero and a log-normal law for the positive values (a hurdle model, Mullahy 1986), in units of the
  window's ``scale`` (no shift, so the support stays ``[0, inf)``). Its quantile function is closed-form, so
  quantiles and median are exact torch operations (no SciPy, no draws).

**Choosing by the data**: :class:`HeadForTarget` holds one head for a real-valued target and one for a
non-negative one; :func:`select_head` picks between them with the data module's ``dims["nonnegative"]`` (a
network calls it with its ``nonnegative`` argument), and returns any other head unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.special
import scipy.stats
import torch
import torch.nn.functional as F
from torch import Tensor, distributions, nn

Scaler = Literal["mean", "standard", "robust"]


def window_scale(y: Tensor, mask: Tensor, method: Scaler) -> tuple[Tensor, Tensor]:
    """``(loc, scale)``, each ``[B, 1]``, of the observed (``mask == 1``) steps of ``y`` ``[B, L]``."""
    count = mask.sum(1, keepdim=True).clamp_min(1.0)  # [B, L] -> [B, 1]
    abs_mean = (y.abs() * mask).sum(1, keepdim=True) / count  # [B, 1]
    if method == "mean":
        loc, scale = torch.zeros_like(abs_mean), abs_mean
    elif method == "standard":
        loc = (y * mask).sum(1, keepdim=True) / count
        scale = (((y - loc) ** 2 * mask).sum(1, keepdim=True) / count).sqrt()
    elif method == "robust":
        observed = torch.where(mask > 0, y, torch.full_like(y, float("nan")))  # padded steps drop out
        q = torch.nanquantile(observed, torch.tensor([0.25, 0.5, 0.75], device=y.device), dim=1).T  # [B, 3]
        loc, scale = q[:, 1:2].nan_to_num(0.0), (q[:, 2:3] - q[:, 0:1]).nan_to_num(0.0)
    else:
        raise ValueError(f"scaler={method!r}; expected 'mean', 'standard' or 'robust'")
    scale = torch.where(scale > 1e-6, scale, abs_mean)
    return loc, torch.where(scale > 1e-6, scale, torch.ones_like(scale))


class OutputHead(nn.Module):
    """Raw outputs ``[B, h, n_outputs]`` -> loss, median and quantiles in the original units."""

    n_outputs: int = 1
    probabilistic: bool = True

    def step_loss(self, raw: Tensor, y: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        """The loss of every window and horizon step, ``[B, h]``."""
        raise NotImplementedError

    def loss(self, raw: Tensor, y: Tensor, loc: Tensor, scale: Tensor, weight: Tensor | None = None) -> Tensor:
        """Mean of :meth:`step_loss`; with ``weight`` ``[B, 1]``, of each window's losses times its weight."""
        steps = self.step_loss(raw, y, loc, scale)  # [B, h]
        return steps.mean() if weight is None else (steps * weight).mean()

    def median(self, raw: Tensor, loc: Tensor, scale: Tensor) -> Tensor:  # -> [B, h]
        return self.quantiles(raw, loc, scale, [0.5])[..., 0]

    def quantiles(self, raw: Tensor, loc: Tensor, scale: Tensor, levels: Sequence[float]) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} gives point forecasts only")


class PointHead(OutputHead):
    """One value per step trained with MAE or MSE on the scaled target."""

    probabilistic = False

    def __init__(self, loss: Literal["mae", "mse"] = "mae") -> None:
        super().__init__()
        if loss not in ("mae", "mse"):
            raise ValueError(f"loss={loss!r}; expected 'mae' or 'mse'")
        self.power = 1 if loss == "mae" else 2

    def step_loss(self, raw: Tensor, y: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        return (raw[..., 0] - (y - loc) / scale).abs() ** self.power  # [B, h]

    def median(self, raw: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        return loc + scale * raw[..., 0]  # [B, h]


def quantile_levels(quantiles: Sequence[float]) -> list[float]:
    """The sorted quantile levels of a quantile head: distinct, inside (0, 1), the median among them."""
    levels = sorted(float(q) for q in quantiles)
    if 0.5 not in levels or any(not 0 < q < 1 for q in levels) or len(set(levels)) != len(levels):
        raise ValueError(f"quantiles={list(quantiles)}: distinct levels in (0, 1) including 0.5 (the median)")
    return levels


class QuantileHead(OutputHead):
    """A set of quantiles per step, ordered by a cumulative-softplus parameterisation."""

    def __init__(self, quantiles: Sequence[float] = (0.025, 0.1, 0.5, 0.9, 0.975)) -> None:
        super().__init__()
        self.levels = quantile_levels(quantiles)
        self.n_outputs = len(self.levels)
        self.register_buffer("q", torch.tensor(self.levels), persistent=False)

    def ordered(self, raw: Tensor) -> Tensor:  # [B, h, Q] -> [B, h, Q], non-decreasing in Q
        steps = torch.cat([raw[..., :1], F.softplus(raw[..., 1:])], dim=-1)  # [B, h, Q]
        return torch.cumsum(steps, dim=-1)

    def step_loss(self, raw: Tensor, y: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        u = ((y - loc) / scale).unsqueeze(-1) - self.ordered(raw)  # [B, h, 1] - [B, h, Q] -> [B, h, Q]
        return (u * (self.q - (u < 0).float())).sum(-1)  # [B, h, Q] -> [B, h]

    def quantiles(self, raw: Tensor, loc: Tensor, scale: Tensor, levels: Sequence[float]) -> Tensor:
        """Linear interpolation between the trained levels; levels outside their range are clamped."""
        z = self.ordered(raw) @ _interpolation(self.levels, levels, raw)  # [B, h, Q] @ [Q, R] -> [B, h, R]
        return loc.unsqueeze(-1) + scale.unsqueeze(-1) * z

    def values(self, raw: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        """The trained quantiles ``[B, h, Q]`` in the original units."""
        return loc.unsqueeze(-1) + scale.unsqueeze(-1) * self.ordered(raw)

    def raw_from_values(self, values: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        """Inverse of :meth:`values`: raw outputs ``[B, h, Q]`` whose quantiles are ``values`` (non-decreasing
        in ``Q``; ties are kept a hair apart), e.g. for quantiles combined over ensemble members."""
        z = (values - loc.unsqueeze(-1)) / scale.unsqueeze(-1)  # [B, h, Q]
        return torch.cat([z[..., :1], _inverse_softplus(z[..., 1:] - z[..., :-1])], dim=-1)


def _inverse_softplus(x: Tensor) -> Tensor:
    """``softplus^{-1}(x) = log(e^x - 1) = x + log(1 - e^{-x})``, floored for tiny gaps."""
    x = x.clamp_min(1e-6)
    return x + torch.log1p(-torch.exp(-x))


def _interpolation(grid: Sequence[float], levels: Sequence[float], like: Tensor) -> Tensor:
    """``[Q, R]`` weights of the trained levels ``grid`` in each requested level: linear interpolation (clamped
    outside the grid), so ``values @ weights`` interpolates quantiles ``[.., Q]`` to ``[.., R]``."""
    eye = np.eye(len(grid))
    # weight of trained level j in requested level r: linear interpolation of the unit vector e_j
    weights = np.stack([np.interp(list(levels), np.asarray(grid), eye[j]) for j in range(len(grid))])  # [Q, R]
    return torch.as_tensor(weights, dtype=like.dtype, device=like.device)


class NonNegativeQuantileHead(OutputHead):
    """:class:`QuantileHead`'s pinball loss and levels, with every quantile non-negative by construction (a law
    on ``[0, inf)``, free of any parametric form): in the original units

    ``y_q1 = scale * softplus(r_1 + loc / scale)``, ``y_qk = y_q(k-1) + scale * softplus(r_k)``,

    so a quantile reaches zero only in the limit ``r_1 -> -inf`` (an intermittent series' low quantiles sit at a
    hair above zero) and sits far from it, like :class:`QuantileHead`'s, where the data do. Not a
    :class:`QuantileHead`: code that decodes ``QuantileHead.ordered`` itself must not take it for one; use
    :meth:`values` and :meth:`raw_from_values`, which both heads have.
    """

    def __init__(self, quantiles: Sequence[float] = (0.025, 0.1, 0.5, 0.9, 0.975)) -> None:
        super().__init__()
        self.levels = quantile_levels(quantiles)
        self.n_outputs = len(self.levels)
        self.register_buffer("q", torch.tensor(self.levels), persistent=False)

    def values(self, raw: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        """The trained quantiles ``[B, h, Q]`` in the original units, each ``>= 0``."""
        first = F.softplus(raw[..., :1] + (loc / scale).unsqueeze(-1))  # [B, h, 1]
        steps = torch.cat([first, F.softplus(raw[..., 1:])], dim=-1)  # [B, h, Q]
        return scale.unsqueeze(-1) * torch.cumsum(steps, dim=-1)

    def raw_from_values(self, values: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        """Inverse of :meth:`values` (for ``values > 0``, non-decreasing in ``Q``)."""
        steps = torch.cat([values[..., :1], values[..., 1:] - values[..., :-1]], dim=-1) / scale.unsqueeze(-1)
        first = _inverse_softplus(steps[..., :1]) - (loc / scale).unsqueeze(-1)
        return torch.cat([first, _inverse_softplus(steps[..., 1:])], dim=-1)

    def step_loss(self, raw: Tensor, y: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        """Pinball loss over the levels on the scaled residual ``(y - y_q) / scale``, as :class:`QuantileHead`."""
        u = (y.unsqueeze(-1) - self.values(raw, loc, scale)) / scale.unsqueeze(-1)  # [B, h, Q]
        return (u * (self.q - (u < 0).float())).sum(-1)  # [B, h, Q] -> [B, h]

    def quantiles(self, raw: Tensor, loc: Tensor, scale: Tensor, levels: Sequence[float]) -> Tensor:
        """Linear interpolation between the trained levels (clamped outside them): non-negative too."""
        return self.values(raw, loc, scale) @ _interpolation(self.levels, levels, raw)  # [B,h,Q] @ [Q,R] -> [B,h,R]


class DistributionHead(OutputHead):
    """Negative log-likelihood of a parametric law; exact quantiles (``icdf`` or :meth:`quantile_function`).

    ``n_samples``: draws per quantile for a law with neither (no built-in head; kept for custom laws).
    """

    def __init__(self, n_samples: int = 200) -> None:
        super().__init__()
        self.n_samples = n_samples

    def distribution(self, raw: Tensor, loc: Tensor, scale: Tensor) -> distributions.Distribution:
        raise NotImplementedError

    def step_loss(self, raw: Tensor, y: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        return -self.distribution(raw, loc, scale).log_prob(y)  # [B, h]

    def quantile_function(self, dist: distributions.Distribution, p: np.ndarray) -> np.ndarray | None:
        """Quantiles ``[R, B, h]`` of ``dist`` (batch ``[B, h]``) at levels ``p`` ``[R]``, in float64; ``None``
        where only draws can give them."""
        return None

    def quantiles(self, raw: Tensor, loc: Tensor, scale: Tensor, levels: Sequence[float]) -> Tensor:
        dist = self.distribution(raw, loc, scale)
        p = torch.as_tensor(list(levels), dtype=raw.dtype, device=raw.device)  # [R]
        try:
            return dist.icdf(p.view(-1, 1, 1)).permute(1, 2, 0)  # [R, B, h] -> [B, h, R]
        except NotImplementedError:
            pass
        exact = self.quantile_function(dist, np.asarray(list(levels), dtype=np.float64))
        if exact is not None:
            q = torch.as_tensor(exact, dtype=raw.dtype, device=raw.device)  # [R, B, h]
            return q.permute(1, 2, 0)  # [R, B, h] -> [B, h, R]
        draws = dist.sample((self.n_samples,))  # [S, B, h]
        return torch.quantile(draws.to(raw.dtype), p, dim=0).permute(1, 2, 0)  # [R, B, h] -> [B, h, R]


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


class SymmetricHead(DistributionHead):
    """A law symmetric about its location ``loc + scale * r_1``, which is therefore its median."""

    def median(self, raw: Tensor, loc: Tensor, scale: Tensor) -> Tensor:  # -> [B, h]
        return loc + scale * raw[..., 0]


class NormalHead(SymmetricHead):
    n_outputs = 2

    def distribution(self, raw: Tensor, loc: Tensor, scale: Tensor) -> distributions.Distribution:
        return distributions.Normal(loc + scale * raw[..., 0], scale * (F.softplus(raw[..., 1]) + 1e-4),
                                    validate_args=False)  # valid by construction; see StudentTHead


class StudentTHead(SymmetricHead):
    n_outputs = 3

    def parameters_of(self, raw: Tensor, loc: Tensor, scale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(df, location, scale)``, each ``[B, h]``; df > 2 so the variance exists."""
        return 2.0 + F.softplus(raw[..., 2]), loc + scale * raw[..., 0], scale * (F.softplus(raw[..., 1]) + 1e-4)

    def distribution(self, raw: Tensor, loc: Tensor, scale: Tensor) -> distributions.Distribution:
        # valid by construction (df > 2, scale > 0): checking would read the parameters back from the device
        return distributions.StudentT(*self.parameters_of(raw, loc, scale), validate_args=False)

    def step_loss(self, raw: Tensor, y: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        """Negative ``StudentT.log_prob``, its formula written out (the same operations):

        ``log p(y) = -(df + 1)/2 * log1p(z^2 / df) - (log s + log(df)/2 + log(pi)/2 + lgamma(df/2) - lgamma((df+1)/2))``,
        ``z = (y - m) / s``. torch's constructor also builds a chi-squared law for sampling, whose argument check
        (and whose constant made from host data) would wait for the device on every training step.
        """
        df, m, s = self.parameters_of(raw, loc, scale)
        z = (y - m) / s
        norm = s.log() + 0.5 * df.log() + 0.5 * math.log(math.pi) + torch.lgamma(0.5 * df) - torch.lgamma(0.5 * (df + 1.0))
        return 0.5 * (df + 1.0) * torch.log1p(z**2.0 / df) + norm  # [B, h]

    def quantile_function(self, dist: distributions.Distribution, p: np.ndarray) -> np.ndarray:
        assert isinstance(dist, distributions.StudentT)
        t = scipy.special.stdtrit(_numpy(dist.df)[None], p[:, None, None])  # standard t quantiles, [R, B, h]
        return _numpy(dist.loc)[None] + _numpy(dist.scale)[None] * t


class NegativeBinomialHead(DistributionHead):
    n_outputs = 2

    def distribution(self, raw: Tensor, loc: Tensor, scale: Tensor) -> distributions.Distribution:
        mean = scale * F.softplus(raw[..., 0] + loc / scale) + 1e-6  # [B, h]
        total_count = 1.0 / (F.softplus(raw[..., 1]) + 1e-4)  # r = 1 / alpha
        # mean = r * p / (1 - p)  <=>  logits = log(mean) - log(r); validate_args off: y may be non-integer
        return distributions.NegativeBinomial(total_count, logits=mean.log() - total_count.log(),
                                              validate_args=False)

    def quantile_function(self, dist: distributions.Distribution, p: np.ndarray) -> np.ndarray:
        assert isinstance(dist, distributions.NegativeBinomial)
        # torch counts successes (probability sigmoid(logits)) before total_count failures; SciPy's nbinom
        # counts failures before n successes: the same law with SciPy's p = 1 - sigmoid(logits) = sigmoid(-logits)
        p_scipy = _numpy(torch.sigmoid(-dist.logits))[None]  # [1, B, h]
        return scipy.stats.nbinom.ppf(p[:, None, None], _numpy(dist.total_count)[None], p_scipy)  # [R, B, h]


class HurdleLogNormalHead(OutputHead):
    """Zero with probability ``pi``, else log-normal: the law of intermittent demand (many exact zeros, skewed
    sizes), with non-negative support.

    With ``z = y / scale`` (the window's scale; ``loc`` is not used, so zero stays zero),
    ``pi = sigmoid(r_1)``, ``mu = r_2``, ``sigma = softplus(r_3) + sigma_min``:

    ``p(y) = pi`` for ``y = 0``, ``p(y) = (1 - pi) * LogNormal(z; mu, sigma) / scale`` for ``y > 0``;
    ``q_tau(y) = 0`` for ``tau <= pi``, else ``scale * exp(mu + sigma * Phi^{-1}((tau - pi) / (1 - pi)))``.

    ``sigma_min`` keeps the density bounded where the positive values repeat one value (unit sales of 1): a
    log-normal collapsing onto a point would otherwise drive the likelihood to infinity.
    """

    n_outputs = 3

    def __init__(self, sigma_min: float = 0.05) -> None:
        super().__init__()
        if not sigma_min > 0:
            raise ValueError(f"sigma_min={sigma_min}; expected a positive number")
        self.sigma_min = float(sigma_min)

    def parameters_of(self, raw: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(logit pi, mu, sigma)``, each ``[B, h]``."""
        return raw[..., 0], raw[..., 1], F.softplus(raw[..., 2]) + self.sigma_min

    def step_loss(self, raw: Tensor, y: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        logit, mu, sigma = self.parameters_of(raw)
        positive = y > 0  # a value at or below zero is the law's zero (a non-negative target has none below)
        log_z = torch.log(torch.where(positive, y / scale, torch.ones_like(y)))  # masked: no log(0)
        # log LogNormal(z) - log scale = -log z - log sigma - log(2 pi)/2 - (log z - mu)^2 / (2 sigma^2) - log scale
        log_positive = (F.logsigmoid(-logit) - log_z - sigma.log() - 0.5 * math.log(2 * math.pi)
                        - 0.5 * ((log_z - mu) / sigma) ** 2 - scale.log())
        return -torch.where(positive, log_positive, F.logsigmoid(logit))  # [B, h]

    def quantiles(self, raw: Tensor, loc: Tensor, scale: Tensor, levels: Sequence[float]) -> Tensor:
        logit, mu, sigma = (t.unsqueeze(-1) for t in self.parameters_of(raw))  # [B, h, 1] each
        p = torch.as_tensor(list(levels), dtype=raw.dtype, device=raw.device)  # [R]
        pi = torch.sigmoid(logit)
        u = ((p - pi) / (1.0 - pi)).clamp(1e-6, 1.0 - 1e-6)  # [B, h, R]: level within the positive part
        positive = scale.unsqueeze(-1) * torch.exp(mu + sigma * torch.special.ndtri(u))  # [B, h, R]
        return torch.where(p > pi, positive, torch.zeros_like(positive))


class HeadForTarget:
    """A head for each kind of target: ``real`` (any sign) or ``nonnegative`` (sales, demand, counts); the
    network builds the one :func:`select_head` picks with the data's ``dims["nonnegative"]``."""

    def __init__(self, real: OutputHead, nonnegative: OutputHead) -> None:
        if real.n_outputs < 1 or nonnegative.n_outputs < 1:
            raise ValueError("HeadForTarget needs two output heads")
        self.real, self.nonnegative = real, nonnegative


def select_head(head: OutputHead | HeadForTarget, nonnegative: bool) -> OutputHead:
    """``head`` itself, or the choice a :class:`HeadForTarget` makes for a (non-)negative target."""
    if isinstance(head, HeadForTarget):
        return head.nonnegative if nonnegative else head.real
    return head
