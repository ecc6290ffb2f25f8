"""Deep ensemble of global forecasters, the way N-BEATS ensembles (Oreshkin et al. 2020; Lakshminarayanan et al.
2017 for deep ensembles): ``K`` members that differ in their random initialisation and, optionally, in the
length ``L_k`` of the input window they read (N-BEATS uses 2H .. 7H), all trained on the same batches, each on
its own loss,

    L(theta_1 .. theta_K) = sum_k L_k(theta_k),

so every member gets the gradient it would get alone. Forecasts combine quantile by quantile in the original
units, by the mean (Vincentization, Genest 1992) or, by default, the median over members (N-BEATS's choice,
robust to one member that went astray),

    q_tau(x) = mean_k or median_k (loc_k + scale_k * q_{k, tau}(x)),

both of which keep the quantiles ordered; the point forecast is the combined median. The combination is exact
for point and quantile heads, so those are the heads an ensemble accepts (a mixture of parametric laws is not a
law of the same family). The combined quantiles are handed back in the raw parameterisation of the shared head,
relative to the longest member window's ``loc`` and ``scale``, so evaluation, intervals and the exported
ONNX/TorchScript graph treat an ensemble exactly like a single network.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from ecomlab.models.base import Forecaster, ForecastTrainData
from ecomlab.models.forecast_heads import PointHead, QuantileHead
from ecomlab.models.lstm_forecaster import LSTMForecaster


def _inverse_softplus(x: Tensor) -> Tensor:
    """``softplus^{-1}(x) = log(e^x - 1) = x + log(1 - e^{-x})``, floored for tiny gaps (no ``expm1``: ONNX
    opset 17 has none)."""
    x = x.clamp_min(1e-6)
    return x + torch.log1p(-torch.exp(-x))


class ForecastEnsemble(Forecaster):
    """``n_members`` copies of ``member`` (a partial forecaster config), combined quantile by quantile."""

    trainable: ClassVar[bool] = True
    input_keys: ClassVar[tuple[str, ...]] = LSTMForecaster.input_keys
    #: a direct decoder from the export's point of view: one pass from window tensors to raw outputs
    decoder = "direct"

    def __init__(self, member: Callable[..., Forecaster], n_series: int, horizon: int, input_size: int | None = None,
                 n_members: int = 5, input_sizes: Sequence[int] | None = None, n_calendar: int = 0,
                 n_futr: int = 0, n_hist: int = 0, n_static: int = 0, n_static_levels: int = 0,
                 combine: Literal["median", "mean"] = "median", season_length: int = 0) -> None:
        super().__init__()
        if n_members < 1:
            raise ValueError(f"n_members={n_members}; expected an integer >= 1")
        if combine not in ("median", "mean"):
            raise ValueError(f"combine={combine!r}; expected 'median' or 'mean'")
        self.combine = combine
        self.horizon = horizon
        self.input_size = input_size or 2 * horizon
        sizes = [int(s) for s in input_sizes] if input_sizes else [self.input_size]
        too_long = [s for s in sizes if not 1 <= s <= self.input_size]
        if too_long:
            raise ValueError(f"input_sizes {too_long} must lie in 1..{self.input_size} (data.input_size: the "
                             "window every member is cut from); raise data.input_size to the longest")
        dims = {"n_series": n_series, "horizon": horizon, "n_calendar": n_calendar, "n_futr": n_futr,
                "n_hist": n_hist, "n_static": n_static, "n_static_levels": n_static_levels,
                "season_length": season_length}
        accepted = inspect.signature(member).parameters
        #: member k reads the last ``member_sizes[k]`` steps of the window (sizes cycle over the members)
        self.member_sizes = [sizes[k % len(sizes)] for k in range(n_members)]
        self.members = nn.ModuleList(
            member(**{k: v for k, v in dims.items() if k in accepted}, input_size=size) for size in self.member_sizes)
        heads = {type(m.head) for m in self.members}
        if len(heads) != 1 or not issubclass(heads.pop(), QuantileHead | PointHead):
            raise ValueError(f"ForecastEnsemble combines quantiles, which is exact for QuantileHead and PointHead "
                             f"members only; got {sorted({type(m.head).__name__ for m in self.members})}")
        if any(getattr(m, "decoder", "direct") != "direct" for m in self.members):
            raise ValueError("ForecastEnsemble members must use decoder: direct (one pass from window to outputs)")
        self.head = self.members[0].head

    def fit_panel(self, data: ForecastTrainData) -> None:
        for m in self.members:
            m.fit_panel(data)

    def _window(self, batch: dict[str, Any], size: int) -> dict[str, Any]:
        """The batch cut to the last ``size`` history steps (horizon parts kept whole)."""
        cut = batch["insample_y"].shape[1] - size
        out = dict(batch)
        for key in ("insample_y", "insample_mask", "hist_exog", "futr_exog", "calendar"):
            out[key] = batch[key][:, cut:]  # [B, L(+h), ...] -> [B, size(+h), ...]
        return out

    def _quantiles(self, raw: Tensor) -> Tensor:
        """Scaled quantiles ``[B, h, Q]`` from a member's raw outputs."""
        return self.head.ordered(raw) if isinstance(self.head, QuantileHead) else raw[..., :1]

    def raw_outputs(self, batch: dict[str, Any], teacher: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(raw [B, h, P], loc, scale)`` of the combined quantiles, relative to the longest window's scaling."""
        outputs = [m.raw_outputs(self._window(batch, size)) for m, size in zip(self.members, self.member_sizes,
                                                                                strict=True)]
        longest = int(np.argmax(self.member_sizes))
        _, loc, scale = outputs[longest]  # [B, 1] each
        # each member's quantiles in original units, then back to the common scaling: [K, B, h, Q]
        stacked = torch.stack([(lk.unsqueeze(-1) + sk.unsqueeze(-1) * self._quantiles(r) - loc.unsqueeze(-1))
                               / scale.unsqueeze(-1) for r, lk, sk in outputs])
        # the lower median for even K, so every combined quantile is some member's; sort (not median) because
        # ONNX has no median operator
        middle = (len(outputs) - 1) // 2
        z = (stacked.mean(0) if self.combine == "mean"
             else torch.sort(stacked, dim=0).values[middle])  # [K, B, h, Q] -> [B, h, Q]
        if isinstance(self.head, PointHead):
            return z, loc, scale
        # invert QuantileHead.ordered: first quantile, then softplus^{-1} of the (positive) gaps
        raw = torch.cat([z[..., :1], _inverse_softplus(z[..., 1:] - z[..., :-1])], dim=-1)  # [B, h, Q]
        return raw, loc, scale

    def loss(self, batch: dict[str, Any]) -> Tensor:
        return torch.stack([m.loss(self._window(batch, size))
                            for m, size in zip(self.members, self.member_sizes, strict=True)]).sum()

    @torch.no_grad()
    def predict(self, batch: dict[str, Any], horizon: int, levels: Sequence[int] = ()) -> dict[str, np.ndarray]:
        if horizon != self.horizon:
            raise ValueError(f"{type(self).__name__} was built for horizon {self.horizon}, asked for {horizon}")
        device = next(self.parameters()).device
        tensors = {k: torch.as_tensor(batch[k]).to(device) for k in self.input_keys}
        return self.forecasts(*self.raw_outputs(tensors), levels)

    @torch.no_grad()
    def forecasts(self, raw: Tensor, loc: Tensor, scale: Tensor, levels: Sequence[int] = ()) -> dict[str, np.ndarray]:
        return self.members[0].forecasts(raw, loc, scale, levels)

    def forecast(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} is global: it forecasts evaluation batches via predict()")

