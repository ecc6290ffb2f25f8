"""AutoLSTM: the global LSTM forecaster with its hyperparameters chosen by a fixed-budget search on the
validation windows, the way NeuralForecast's ``AutoLSTM`` wraps its LSTM (Olivares et al. 2022) -- here with
Optuna's TPE sampler (Bergstra et al. 2011), seeded, and a trial budget in the config.

The search picks the configuration ``theta`` (network sizes, scaling, step size) that minimises the validation
error of a network trained briefly with it,

    theta* = argmin_{theta in Theta, |trials| = n_trials}  MASE_val( LSTM_theta trained for trial_steps steps ),

where ``Theta`` is ``net_space`` x ``optimizer_space``: each key either ``{choices: [...]}`` (categorical) or
``{low: a, high: b, log: true|false}`` (a float range; ``log`` samples it on the log scale). The validation windows are
the data module's own (the windows checkpoint selection uses); the test windows are never seen. The chosen
network is then built afresh and trained with the full budget like any model (``ForecastTask`` runs the
search in ``setup("fit")``, before its optimizer exists; see :meth:`ecomlab.tasks.forecasting.ForecastTask.
setup`).

This module holds the search space and the network; the task trains and scores the candidates. The chosen
configuration is part of the module's state (``get_extra_state``), so a checkpoint rebuilds the network it
was trained as before its weights load, and a resumed run does not search again.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import optuna
from torch import Tensor

from ecomlab.models.base import Forecaster, ForecastTrainData
from ecomlab.models.lstm_forecaster import LSTMForecaster


def _suggest(trial: optuna.Trial, name: str, spec: dict[str, Any]) -> Any:
    if "choices" in spec:
        return trial.suggest_categorical(name, list(spec["choices"]))
    return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log", False)))


class AutoLSTM(Forecaster):
    """A searched :class:`LSTMForecaster`; forecasts, losses and exports are its chosen network's."""

    trainable: ClassVar[bool] = True
    input_keys: ClassVar[tuple[str, ...]] = LSTMForecaster.input_keys

    def __init__(self, member: Callable[..., LSTMForecaster], n_series: int, horizon: int,
                 input_size: int | None = None, n_calendar: int = 0, n_futr: int = 0, n_hist: int = 0,
                 n_static: int = 0, n_static_levels: int = 0, season_length: int = 0,
                 net_space: dict[str, dict[str, Any]] | None = None,
                 optimizer_space: dict[str, dict[str, Any]] | None = None, n_trials: int = 8,
                 trial_steps: int = 300, seed: int = 0) -> None:
        super().__init__()
        if n_trials < 1 or trial_steps < 1:
            raise ValueError(f"n_trials={n_trials}, trial_steps={trial_steps}; both must be integers >= 1")
        self.member = member
        self.net_space = {k: dict(v) for k, v in (net_space or {}).items()}
        self.optimizer_space = {k: dict(v) for k, v in (optimizer_space or {}).items()}
        accepted = inspect.signature(member).parameters
        unknown = sorted(k for k in self.net_space if k not in accepted)
        if unknown:
            raise ValueError(f"net_space keys {unknown} are not arguments of {getattr(member, 'func', member)}")
        bad = sorted(k for k, v in {**self.net_space, **self.optimizer_space}.items()
                     if not (v.get("choices") or ({"low", "high"} <= set(v) and v["low"] < v["high"])))
        if bad:
            raise ValueError(f"search space keys {bad}: give each {{choices: [...]}} (at least one) or "
                             "{low: a, high: b} with a < b")
        dims = {"n_series": n_series, "horizon": horizon, "input_size": input_size, "n_calendar": n_calendar,
                "n_futr": n_futr, "n_hist": n_hist, "n_static": n_static, "n_static_levels": n_static_levels,
                "season_length": season_length}
        self.dims = {k: v for k, v in dims.items() if k in accepted}
        self.horizon = horizon
        self.n_trials, self.trial_steps, self.seed = n_trials, trial_steps, seed
        #: the chosen configuration: ``{"net": {...}, "optimizer": {...}}`` (empty: the member's defaults)
        self.chosen: dict[str, dict[str, Any]] = {"net": {}, "optimizer": {}}
        self._panel: ForecastTrainData | None = None
        self.net = self.candidate({})

    # ---- the search space (the task trains and scores each candidate) -------------------------------------
    def suggest(self, trial: optuna.Trial) -> dict[str, dict[str, Any]]:
        """One configuration from the trial: ``{"net": {...}, "optimizer": {...}}``."""
        return {part: {k: _suggest(trial, f"{part}.{k}", v) for k, v in space.items()}
                for part, space in (("net", self.net_space), ("optimizer", self.optimizer_space))}

    def candidate(self, net_params: dict[str, Any]) -> LSTMForecaster:
        """A fresh network with ``net_params`` over the member's defaults, fitted to the training panel."""
        net = self.member(**self.dims, **net_params)
        if self._panel is not None:
            net.fit_panel(self._panel)
        return net

    def choose(self, params: dict[str, dict[str, Any]]) -> None:
        """Adopt a configuration: the network is rebuilt (untrained) with it."""
        self.chosen = {"net": dict(params.get("net", {})), "optimizer": dict(params.get("optimizer", {}))}
        self.net = self.candidate(self.chosen["net"])

    def optimizer_overrides(self) -> dict[str, Any]:
        """Optimizer arguments the search chose (e.g. ``lr``), applied over the model config's optimizer."""
        return dict(self.chosen["optimizer"])

    def get_extra_state(self) -> dict[str, Any]:
        return {"chosen": self.chosen}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        # called before the children's weights load (nn.Module loads a module's own state first), so the
        # network is rebuilt with the chosen sizes and then receives its trained weights
        if state["chosen"] != self.chosen:
            self.choose(state["chosen"])

    # ---- the chosen network ----------------------------------------------------------------------------------
    @property
    def head(self) -> Any:
        return self.net.head

    @property
    def decoder(self) -> str:
        return self.net.decoder

    def fit_panel(self, data: ForecastTrainData) -> None:
        self._panel = data  # kept for the candidates and any rebuild
        self.net.fit_panel(data)

    def raw_outputs(self, batch: dict[str, Any], teacher: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        return self.net.raw_outputs(batch, teacher)

    def loss(self, batch: dict[str, Any]) -> Tensor:
        return self.net.loss(batch)

    def predict(self, batch: dict[str, Any], horizon: int, levels: Sequence[int] = ()) -> dict[str, np.ndarray]:
        return self.net.predict(batch, horizon, levels)

    def forecasts(self, raw: Tensor, loc: Tensor, scale: Tensor, levels: Sequence[int] = ()) -> dict[str, np.ndarray]:
        return self.net.forecasts(raw, loc, scale, levels)

    def forecast(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} is global: it forecasts evaluation batches via predict()")
