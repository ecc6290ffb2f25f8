"""Global LSTM forecaster: one network trained on windows of every series of a panel.

Encoder (Hochreiter & Schmidhuber 1997): an LSTM reads the last ``input_size`` steps of history, each step
``x_t = [z_t, m_t, calendar_t, futr_t, hist_t, e_s]`` with the scaled target ``z_t = (y_t - loc) / scale``
(window scaling, :func:`ecomlab.models.forecast_heads.window_scale`), the observation mask ``m_t`` (short
histories are left-padded), standardised covariates and a learned embedding ``e_s`` of the series: its own
embedding (``embedding_dim``; 0 switches it off) concatenated with one embedding per static covariate of the
series (``n_static`` columns such as state and industry, ``static_embedding_dim`` each), so series of the same
group share what is learned about it.

Decoder, by ``decoder``:

* ``direct`` (MQ-RNN, Wen et al. 2017): a global MLP maps the last hidden state and the embedding to one
  context vector per horizon step, ``c_{1..h} = MLP_g([s_T, e_s])``, and a local MLP shared by all steps
  emits each step's outputs from its context and known-future inputs,
  ``r_k = MLP_l([c_k, calendar_{T+k}, futr_{T+k}])``, all ``h`` steps at once.
* ``recursive`` (seq2seq / DeepAR style, Salinas et al. 2020): a second LSTM started from the encoder's state
  steps through the horizon with input ``[z_{T+k-1}, calendar_{T+k}, futr_{T+k}, e_s]``; it is trained with
  the true previous value (teacher forcing) and forecasts by feeding back its own median.

With ``seasonal_lag`` each horizon step's known inputs also carry the scaled value one season back,
``z_{T+k-s*ceil(k/s)}`` and its mask (``s`` = the data module's season length): what seasonal naive forecasts for
that step. The decoder then learns a correction to the last season instead of recalling the season's shape from
the encoder's final state, which on M4 hourly (s = 24, h = 48) it could not (experiments/forecast_suite).

The output head (point, quantile or distribution; :mod:`ecomlab.models.forecast_heads`) turns the raw outputs
into a loss and forecasts in the original units. Point forecast = the median. The loss is in units of the window's
scale (``loss_scale="window"``), or of its seasonal naive error, ``mean_t |y_t - y_{t-m}|`` over the input window
(``loss_scale="mase"``, the scale MASE divides by; N-BEATS, Oreshkin et al. 2020, trained on M4 with it), so that
training weighs each window as the metric does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from ecomlab.models.base import Forecaster, ForecastTrainData
from ecomlab.models.forecast_heads import OutputHead, QuantileHead, Scaler, window_scale


class LSTMForecaster(Forecaster):
    """Global LSTM encoder with a direct (MLP) or recursive (LSTM) multi-horizon decoder."""

    trainable: ClassVar[bool] = True
    #: the window tensors ``raw_outputs`` reads: the inputs of an exported graph, in this order
    input_keys: ClassVar[tuple[str, ...]] = ("insample_y", "insample_mask", "futr_exog", "hist_exog", "calendar",
                                             "series_index")

    def __init__(self, n_series: int, horizon: int, input_size: int | None = None, head: OutputHead | None = None,
                 n_calendar: int = 0, n_futr: int = 0, n_hist: int = 0, hidden_size: int = 64, n_layers: int = 2,
                 dropout: float = 0.1, embedding_dim: int = 8, decoder: Literal["direct", "recursive"] = "direct",
                 scaler: Scaler = "mean", mlp_size: int = 128, n_static: int = 0, n_static_levels: int = 0,
                 static_embedding_dim: int = 4, season_length: int = 0, seasonal_lag: bool = False,
                 loss_scale: Literal["window", "mase"] = "window", max_loss_weight: float = 100.0) -> None:
        super().__init__()
        if decoder not in ("direct", "recursive"):
            raise ValueError(f"decoder={decoder!r}; expected 'direct' or 'recursive'")
        if scaler not in ("mean", "standard", "robust"):
            raise ValueError(f"scaler={scaler!r}; expected 'mean', 'standard' or 'robust'")
        self.n_series, self.horizon = n_series, horizon
        self.input_size = input_size or 2 * horizon
        self.n_calendar, self.n_futr, self.n_hist = n_calendar, n_futr, n_hist
        self.decoder, self.scaler = decoder, scaler
        if loss_scale not in ("window", "mase"):
            raise ValueError(f"loss_scale={loss_scale!r}; expected 'window' or 'mase'")
        if max_loss_weight < 1:
            raise ValueError(f"max_loss_weight={max_loss_weight}; expected a number >= 1")
        self.loss_scale, self.max_loss_weight = loss_scale, max_loss_weight
        self.head = head if head is not None else QuantileHead()
        if n_static and n_static_levels < n_static:
            raise ValueError(f"n_static={n_static} static covariates need n_static_levels >= {n_static}; "
                             f"got {n_static_levels}")
        self.n_static = n_static
        self.embedding = nn.Embedding(n_series, embedding_dim)
        # one table over every static column's groups (codes share one space, see ForecastDataModule)
        self.static_embedding = nn.Embedding(n_static_levels, static_embedding_dim) if n_static else None
        # each series' group codes, set by fit_panel; saved (so exports and checkpoints keep them) only when used
        self.register_buffer("static_codes", torch.zeros(n_series, n_static, dtype=torch.long),
                             persistent=n_static > 0)
        embedding_dim = embedding_dim + n_static * static_embedding_dim  # e_s = [series, static...]
        n_known = n_calendar + n_futr  # inputs known for every step, past and future
        if seasonal_lag and season_length < 1:
            raise ValueError(f"seasonal_lag needs season_length >= 1 (the data module's); got {season_length}")
        self.season_length, self.seasonal_lag = season_length, seasonal_lag
        n_lag = 2 if seasonal_lag else 0  # each horizon step's value one season back, and its mask
        lstm_dropout = dropout if n_layers > 1 else 0.0
        self.encoder = nn.LSTM(2 + n_known + n_hist + embedding_dim, hidden_size, n_layers, batch_first=True,
                               dropout=lstm_dropout)
        p = self.head.n_outputs
        if decoder == "direct":
            self.context_size = max(8, hidden_size // 4)
            self.global_mlp = nn.Sequential(
                nn.Linear(hidden_size + embedding_dim, mlp_size), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(mlp_size, horizon * self.context_size))
            self.local_mlp = nn.Sequential(nn.Linear(self.context_size + n_known + n_lag, mlp_size // 2), nn.ReLU(),
                                           nn.Linear(mlp_size // 2, p))
        else:
            self.step_lstm = nn.LSTM(1 + n_known + n_lag + embedding_dim, hidden_size, n_layers, batch_first=True,
                                     dropout=lstm_dropout)
            self.project = nn.Linear(hidden_size, p)
        # covariate standardisation from the training panel (fit_panel); rebuilt, so not in checkpoints
        self.register_buffer("cov_mean", torch.zeros(n_futr + n_hist), persistent=False)
        self.register_buffer("cov_std", torch.ones(n_futr + n_hist), persistent=False)

    def fit_panel(self, data: ForecastTrainData) -> None:
        """Static group codes; covariate means and standard deviations over the training part of the panel."""
        if self.n_static:
            codes = None if data.static is None else np.asarray(data.static)
            if codes is None or codes.shape != tuple(self.static_codes.shape):
                raise ValueError(f"the network was built for {self.n_static} static covariate(s) of "
                                 f"{self.static_codes.shape[0]} series; the training panel has "
                                 f"{None if codes is None else codes.shape} (declare data.static_covariates)")
            assert self.static_embedding is not None
            if codes.min() < 0 or codes.max() >= self.static_embedding.num_embeddings:
                raise ValueError(f"static covariate codes must lie in 0..{self.static_embedding.num_embeddings - 1}")
            self.static_codes.copy_(torch.as_tensor(codes, dtype=torch.long))
        if data.covariates is None or self.n_futr + self.n_hist == 0:
            return
        values = np.concatenate([np.asarray(c, dtype=np.float64) for c in data.covariates])  # [sum T, C]
        if values.shape[1] != self.n_futr + self.n_hist:
            raise ValueError(f"training panel has {values.shape[1]} covariate columns; the network was built "
                             f"for {self.n_futr} known-future + {self.n_hist} past-only")
        std = values.std(0)
        self.cov_mean.copy_(torch.as_tensor(values.mean(0)))
        self.cov_std.copy_(torch.as_tensor(np.where(std > 0, std, 1.0)))

    def _inputs(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Encoder inputs ``[B, L, F]``, future known inputs ``[B, h, n_known]``, embedding, loc, scale, z."""
        y, mask = batch["insample_y"].float(), batch["insample_mask"].float()  # [B, L]
        L = y.shape[1]
        loc, scale = window_scale(y, mask, self.scaler)  # [B, 1] each
        z = (y - loc) / scale * mask  # [B, L]
        futr = (batch["futr_exog"].float() - self.cov_mean[: self.n_futr]) / self.cov_std[: self.n_futr]
        hist = (batch["hist_exog"].float() - self.cov_mean[self.n_futr:]) / self.cov_std[self.n_futr:]
        known = torch.cat([batch["calendar"].float(), futr], dim=-1)  # [B, L + h, n_known]
        emb = self.embedding(batch["series_index"])  # [B, E_series]
        if self.static_embedding is not None:
            groups = self.static_embedding(self.static_codes[batch["series_index"]])  # [B, n_static, E_static]
            emb = torch.cat([emb, groups.flatten(1)], dim=-1)  # [B, E = E_series + n_static * E_static]
        observed = mask.unsqueeze(-1)  # [B, L, 1]: padded steps carry zeros in every input
        x = torch.cat([z.unsqueeze(-1), observed, known[:, :L] * observed, hist * observed,
                       emb.unsqueeze(1).expand(-1, L, -1)], dim=-1)  # [B, L, 2 + n_known + n_hist + E]
        future = known[:, L:]  # [B, h, n_known]
        if self.seasonal_lag:
            future = torch.cat([future, self._seasonal_lag(z, mask)], dim=-1)  # [B, h, n_known + 2]
        return x, future, emb, loc, scale, z

    def _seasonal_lag(self, z: Tensor, mask: Tensor) -> Tensor:
        """Each horizon step's scaled value at the same phase of the last observed season, and its mask.

        Step ``k`` (1-based) sees ``z_{T+k-s*ceil(k/s)}``, what seasonal naive would forecast, so the decoder learns
        a correction to it instead of recalling the season's shape from the encoder's state; a season longer than
        the window (or a padded step) gives 0 with mask 0.
        """
        L, s = z.shape[1], self.season_length
        k = torch.arange(1, self.horizon + 1, device=z.device)
        idx = L + k - 1 - s * torch.div(k + s - 1, s, rounding_mode="floor")  # [h]: 0-based window positions
        inside = (idx >= 0).to(z.dtype)  # [h]
        idx = idx.clamp(min=0)
        lag_mask = mask[:, idx] * inside  # [B, L] -> [B, h]
        return torch.stack([z[:, idx] * lag_mask, lag_mask], dim=-1)  # [B, h] x 2 -> [B, h, 2]

    def _decode_steps(self, inputs: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        out, state = self.step_lstm(inputs, state)  # [B, k, 1 + n_known + E] -> [B, k, H]
        return self.project(out).float(), state  # [B, k, H] -> [B, k, P]; float32 for the heads under autocast

    def raw_outputs(self, batch: dict[str, Any], teacher: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(raw [B, h, P], loc, scale)``; ``teacher`` ``[B, h]`` feeds true values to the recursive decoder."""
        x, known, emb, loc, scale, z = self._inputs(batch)
        out, state = self.encoder(x)  # [B, L, F] -> [B, L, H]
        h = self.horizon
        if self.decoder == "direct":
            context = self.global_mlp(torch.cat([out[:, -1], emb], dim=-1))  # [B, H + E] -> [B, h * C]
            context = context.view(-1, h, self.context_size)  # [B, h * C] -> [B, h, C]
            raw = self.local_mlp(torch.cat([context, known], dim=-1))  # [B, h, C + n_known] -> [B, h, P]
            return raw.float(), loc, scale  # float32 for the heads (likelihoods) under bf16 autocast
        emb_h = emb.unsqueeze(1).expand(-1, h, -1)  # [B, h, E]
        if teacher is not None:
            prev = torch.cat([z[:, -1:], (teacher[:, :-1] - loc) / scale], dim=1)  # [B, h]: z_T, z_{T+1}, ...
            raw, _ = self._decode_steps(torch.cat([prev.unsqueeze(-1), known, emb_h], dim=-1), state)
            return raw, loc, scale
        prev, steps = z[:, -1:], []  # [B, 1]
        for k in range(h):
            step_in = torch.cat([prev.unsqueeze(-1), known[:, k: k + 1], emb_h[:, k: k + 1]], dim=-1)  # [B, 1, .]
            raw_k, state = self._decode_steps(step_in, state)  # [B, 1, P]
            steps.append(raw_k)
            prev = (self.head.median(raw_k, loc, scale) - loc) / scale  # feed back the scaled median, [B, 1]
        return torch.cat(steps, dim=1), loc, scale  # h x [B, 1, P] -> [B, h, P]

    def loss(self, batch: dict[str, Any]) -> Tensor:
        target = batch["outsample_y"].float()  # [B, h]
        raw, loc, scale = self.raw_outputs(batch, teacher=target if self.decoder == "recursive" else None)
        weight = self.mase_weight(batch, scale) if self.loss_scale == "mase" else None
        return self.head.loss(raw, target, loc, scale, weight)

    def mase_weight(self, batch: dict[str, Any], scale: Tensor) -> Tensor:
        """Per-window loss weights ``[B, 1]`` that put the loss in units of the window's seasonal naive error.

        ``w = scale / d`` with ``d = mean |y_t - y_{t-m}|`` over the input window's observed pairs (``m`` the
        season length, or 1 when the window holds no whole season), so the scaled loss times ``w`` is the loss
        divided by ``d``: what MASE divides by (N-BEATS trained on M4 with this loss). A window with no pair or a
        constant one gets ``d = scale``; weights are capped at ``max_loss_weight`` and divided by the batch mean,
        so the step size keeps its meaning.
        """
        y, mask = batch["insample_y"].float(), batch["insample_mask"].float()  # [B, L]
        m = self.season_length if 0 < self.season_length < y.shape[1] else 1
        pair = mask[:, m:] * mask[:, :-m]  # [B, L - m]
        d = ((y[:, m:] - y[:, :-m]).abs() * pair).sum(1, keepdim=True) / pair.sum(1, keepdim=True).clamp_min(1.0)
        d = torch.where(d > 1e-6 * scale, d, scale)  # [B, 1]
        weight = (scale / d).clamp(max=self.max_loss_weight)  # [B, 1]
        return weight / weight.mean()

    @torch.no_grad()
    def predict(self, batch: dict[str, Any], horizon: int, levels: Sequence[int] = ()) -> dict[str, np.ndarray]:
        if horizon != self.horizon:
            raise ValueError(f"{type(self).__name__} was built for horizon {self.horizon}, asked for {horizon}")
        device = self.embedding.weight.device
        tensors = {k: torch.as_tensor(batch[k]).to(device) for k in self.input_keys}
        # a head without a quantile function draws from a fixed stream, so evaluation is repeatable
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(0)
            raw, loc, scale = self.raw_outputs(tensors)
            return self.forecasts(raw, loc, scale, levels)

    @torch.no_grad()
    def forecasts(self, raw: Tensor, loc: Tensor, scale: Tensor, levels: Sequence[int] = ()) -> dict[str, np.ndarray]:
        """``y_hat`` and ``lo_<level>`` / ``hi_<level>`` ``[B, h]`` from raw outputs; split from ``predict`` so an
        exported graph (which ends at ``raw_outputs``) is finished by the same code (exact quantile functions; seeded
        draws only for a law without one)."""
        out = {"y_hat": self.head.median(raw, loc, scale)}  # [B, h]
        if levels and self.head.probabilistic:
            probs = [p for lv in levels for p in ((1 - lv / 100) / 2, (1 + lv / 100) / 2)]
            q = self.head.quantiles(raw, loc, scale, probs)  # [B, h, 2 * len(levels)]
            for i, lv in enumerate(levels):
                out[f"lo_{lv}"], out[f"hi_{lv}"] = q[..., 2 * i], q[..., 2 * i + 1]
        return {k: v.double().cpu().numpy() for k, v in out.items()}

    def forecast(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} is global: it forecasts evaluation batches via predict()")
