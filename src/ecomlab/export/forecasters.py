"""Forecaster bundles: local models export their configuration, the global LSTM its network and inputs.

Seasonal naive, naive, Naive2, ARIMA, AutoARIMA and ETS refit on every history they are given (Hyndman &
Athanasopoulos, *FPP*, ch. 5 and 8-9), so a trained run holds no fitted state: the bundle is the resolved
network config plus its sizes (``model/forecaster.json``), the interval levels of the run and the data's
frequency. Served forecasts are :math:`\\hat y_{T+1..T+h} = f_{\\theta(y_{1..T})}(h)` with the model refitted
on the supplied history ``y_{1..T}`` of each series, exactly as in the backtest.

:class:`BundleForecaster` is the loaded form: ``forecast(history_df, horizon, covariates=None)`` takes a
long ``unique_id, ds, y`` frame and returns a long frame with ``y_hat``, the ``lo_<level>`` / ``hi_<level>``
interval bounds and the same bounds as quantile columns ``q<p>`` (``lo_80`` = ``q0.1``).

The global LSTM (:mod:`ecomlab.models.lstm_forecaster`) is written natively: its state dict (``.npz``), the
covariate standardisation ``(mean, std)`` from the training panel, and the input specification (series ids
in embedding order, history window ``input_size``, horizon, calendar cycles, known-future and past-only
covariate columns). :class:`BundleLSTM` rebuilds the model's evaluation window from a supplied history --
the last ``input_size`` steps, left-padded and masked, calendar features of history and horizon dates,
covariates -- so a served forecast is the backtest's ``net.predict`` on the same window. Series unknown to
the trained embedding are refused. A run with calibrated intervals (``model.calibrate``) writes its conformal
offsets into the specification (``interval_offsets``), and the bundle moves the served bounds by them exactly as
the backtest did (:mod:`ecomlab.models.conformal`).

Gradient-boosted trees on lags (:mod:`ecomlab.models.gbt_lags`) are written natively and without pickle: every
fitted ensemble's tree node tables and categorical bitsets as ``.npz`` (:mod:`ecomlab.export.trees`, whose
numpy predictor reproduces scikit-learn's), the conformal calibration errors behind the intervals, and the
feature specification (lags and rolling windows from the config, calendar cycles, known-future covariate
columns, series ids of the categorical series feature). :class:`BundleGBT` rebuilds the model's features from
a supplied history exactly as the backtest does; a series the model never saw gets a missing series feature
(the trees route it like an unknown category, as scikit-learn would). A run trained with ``refit: true`` is
served by the ensembles fitted on the training panel (a bundle carries no panel to refit on).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from ecomlab.data.bundle import parse_times
from ecomlab.data.forecast_datamodule import Series, WindowTensors, calendar_features
from ecomlab.export.graphs import write_forecast_graph
from ecomlab.export.runtime import read_model_spec
from ecomlab.export.trees import NumpyHGB, hgb_arrays
from ecomlab.metrics.forecasting import mase_scale
from ecomlab.metrics.probabilistic import quantiles_from_intervals
from ecomlab.models.base import Forecaster, ForecastTrainData
from ecomlab.models.conformal import calibrated
from ecomlab.models.forecast_ensemble import ForecastEnsemble
from ecomlab.models.forecast_heads import PointHead, QuantileHead, SymmetricHead
from ecomlab.models.gbt_lags import GBTLags
from ecomlab.models.lstm_forecaster import LSTMForecaster
from ecomlab.models.nonnegative import nonnegative_forecasts
from ecomlab.utils import instantiate_with_dims

SPEC = "model/forecaster.json"


def _freq(datamodule: Any) -> str | None:
    ds = pd.DatetimeIndex(datamodule.series[0].ds)
    return pd.infer_freq(ds) if len(ds) >= 3 else None


def export_forecaster(task: Any, datamodule: Any, fmt: str, root: Path, net_config: dict[str, Any]) -> dict[str, Any]:
    """Write the forecaster's files under ``root / "model"``; returns the manifest entries."""
    (root / "model").mkdir(parents=True, exist_ok=True)
    return _export(task.net, task, datamodule, fmt, root, net_config)


@functools.singledispatch
def _export(net: Forecaster, task: Any, datamodule: Any, fmt: str, root: Path,
            net_config: dict[str, Any]) -> dict[str, Any]:
    if net.trainable or type(net).fit_panel is not Forecaster.fit_panel:
        raise ValueError(f"{type(net).__name__} is a global forecaster with fitted state; only the per-series "
                         "models (seasonal_naive, naive, naive2, arima, auto_arima, ets) can be exported so far")
    freq = _freq(datamodule)
    spec = {"config": net_config, "dims": dict(datamodule.dims), "levels": list(task.levels), "freq": freq,
            "horizon": int(datamodule.dims["horizon"])}
    (root / SPEC).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    notes = [] if fmt == "native" else [f"format={fmt} was asked for; per-series models refit on each history "
                                        "and are exported as their configuration (JSON)"]
    return {"format": "native", "forecaster": {"_target_": "ecomlab.export.forecasters.BundleForecaster",
                                               "path": SPEC},
            "horizon": spec["horizon"], "levels": spec["levels"], "freq": freq, "notes": notes}


def _scaled(net: Any) -> list[LSTMForecaster]:
    """The LSTMs inside ``net`` (itself, or an ensemble's members): they hold the covariate scaling."""
    return [m for m in net.modules() if isinstance(m, LSTMForecaster)]


@_export.register(LSTMForecaster)
@_export.register(ForecastEnsemble)
def _export_lstm(net: LSTMForecaster | ForecastEnsemble, task: Any, datamodule: Any, fmt: str, root: Path,
                 net_config: dict[str, Any]) -> dict[str, Any]:
    # the offsets the test just used (ecomlab-train exports after testing), else computed now (ecomlab-export)
    offsets = task.interval_offsets or task.calibrate_intervals(datamodule)
    spec = {"config": net_config, "dims": dict(datamodule.dims), "levels": list(task.levels),
            "interval_offsets": {str(level): [float(v) for v in q] for level, q in offsets.items()},
            "freq": _freq(datamodule), "horizon": net.horizon, "input_size": net.input_size,
            "series": [s.unique_id for s in datamodule.series],
            "calendar_attributes": [list(a) for a in datamodule.calendar_attributes],
            "futr_columns": list(datamodule.futr_covariates), "hist_columns": list(datamodule.hist_covariates)}
    (root / "model" / "lstm.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    entry = {"_target_": "ecomlab.export.forecasters.BundleLSTM", "spec": "model/lstm.json"}
    notes: list[str] = []
    written = "native"
    if fmt != "native" and net.decoder == "recursive" and not isinstance(net.head, SymmetricHead | PointHead
                                                                          | QuantileHead):
        notes.append(f"format={fmt} was asked for; the recursive decoder feeds back the median of "
                     f"{type(net.head).__name__}, a SciPy quantile function no graph holds: written natively "
                     "(state dict .npz)")
    elif fmt != "native":
        graph = GRAPH_FILES[fmt]
        _write_checked_graph(net, datamodule, fmt, root / graph)
        entry.update({"graph": graph, "runtime": fmt})
        written = fmt
    if written == "native":
        np.savez(root / "model" / "weights.npz",
                 **{k: v.detach().cpu().numpy() for k, v in net.state_dict().items()})
        lstm = _scaled(net)[0]  # every member has the same scaling (fit_panel on one training panel)
        np.savez(root / "model" / "scaling.npz", cov_mean=lstm.cov_mean.cpu().numpy(),
                 cov_std=lstm.cov_std.cpu().numpy())
        entry.update({"weights": "model/weights.npz", "scaling": "model/scaling.npz"})
    return {"format": written, "forecaster": entry, "horizon": net.horizon, "levels": spec["levels"],
            "freq": spec["freq"], "notes": notes}


GRAPH_FILES = {"onnx": "model/lstm.onnx", "torchscript": "model/lstm.pt"}


def _write_checked_graph(net: LSTMForecaster, datamodule: Any, fmt: str, path: Path) -> None:
    """Trace the network on real evaluation windows, then hold the written graph to the network on them."""
    import torch

    loader = datamodule.test_dataloader()
    batch = next(iter(loader))
    example = {k: torch.as_tensor(batch[k]) for k in net.input_keys}
    if len(example["series_index"]) < 2:  # a batch axis of 1 could be mistaken for a constant by the tracer
        example = {k: torch.cat([v, v]) for k, v in example.items()}
    net = net.eval()
    write_forecast_graph(net, example, fmt, path)
    with torch.no_grad():
        expected = net.raw_outputs(example)
    got = _graph_runner(path, fmt)(example)
    for name, a, b in zip(("raw", "loc", "scale"), expected, got, strict=True):
        if not torch.allclose(a.float(), b, rtol=1e-4, atol=1e-5):
            raise RuntimeError(f"{path}: the exported graph's '{name}' differs from the network by "
                               f"{float((a.float() - b).abs().max()):.3g}; not writing a bundle that disagrees")


def _graph_runner(path: Path, fmt: str) -> Any:
    """``runner(window tensors) -> (raw, loc, scale)`` torch tensors, from an ONNX or TorchScript graph."""
    import torch

    if fmt == "onnx":
        from ecomlab.export.runtime import ort_session

        session = ort_session(path)
        names = [i.name for i in session.get_inputs()]  # unused (empty) inputs may have been pruned

        def run_onnx(tensors: dict[str, Any]) -> tuple[Any, ...]:
            feed = {k: np.ascontiguousarray(np.asarray(tensors[k])) for k in names}
            return tuple(torch.from_numpy(v) for v in session.run(["raw", "loc", "scale"], feed))

        return run_onnx
    module = torch.jit.load(str(path), map_location="cpu").eval()
    keys = LSTMForecaster.input_keys

    def run_torchscript(tensors: dict[str, Any]) -> tuple[Any, ...]:
        with torch.no_grad():
            return tuple(v.float() for v in module(*(torch.as_tensor(tensors[k]) for k in keys)))

    return run_torchscript


@_export.register(GBTLags)
def _export_gbt(net: GBTLags, task: Any, datamodule: Any, fmt: str, root: Path,
                net_config: dict[str, Any]) -> dict[str, Any]:
    spec = {"config": net_config, "dims": dict(datamodule.dims), "levels": list(task.levels),
            "freq": _freq(datamodule), "horizon": net.horizon, "n_models": len(net.models),
            "series": [s.unique_id for s in datamodule.series], "use_series": net.use_series,
            "calendar_attributes": [list(a) for a in datamodule.calendar_attributes],
            "futr_columns": list(datamodule.futr_covariates)}
    (root / "model" / "gbt.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    arrays = {f"m{k}_{name}": value for k, model in enumerate(net.models) for name, value in hgb_arrays(model).items()}
    if net.calibration_errors is not None:
        arrays["calibration_errors"] = net.calibration_errors
    np.savez(root / "model" / "trees.npz", **arrays)
    notes = [] if fmt == "native" else [f"format={fmt} was asked for; gradient-boosted trees are written natively "
                                        "(tree node arrays .npz, predicted in numpy)"]
    if net.refit:
        notes.append("trained with refit: true; served forecasts use the ensembles fitted on the training panel")
    if net.calibration_errors is None:
        notes.append("no conformal calibration errors (calibration_windows: 0 or too-short series): point "
                     "forecasts only")
    return {"format": "native", "forecaster": {"_target_": "ecomlab.export.forecasters.BundleGBT",
                                               "spec": "model/gbt.json", "trees": "model/trees.npz"},
            "horizon": net.horizon, "levels": spec["levels"], "freq": spec["freq"], "notes": notes}


def _long_frame(uids: list[Any], dates: list[pd.DatetimeIndex], prediction: dict[str, np.ndarray]) -> pd.DataFrame:
    """Long ``unique_id, ds, y_hat, lo_*, hi_*, q*`` frame from ``[S, h]`` prediction arrays."""
    quantiles = quantiles_from_intervals(prediction)
    out = []
    for s, (uid, ds) in enumerate(zip(uids, dates, strict=True)):
        columns = {key: value[s] for key, value in prediction.items()}
        columns.update({f"q{q:g}": value[s] for q, value in quantiles.items() if q != 0.5})
        out.append(pd.DataFrame({"unique_id": uid, "ds": ds, **columns}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["unique_id", "ds", "y_hat"])


def _served(prediction: dict[str, np.ndarray], histories: list[np.ndarray], dims: dict[str, Any],
            offsets: dict[str, list[float]] | None = None) -> dict[str, np.ndarray]:
    """The backtest's finishing steps, so a served forecast equals the evaluated one: the run's conformal interval
    offsets (``offsets``, per level, in units of each history's MASE scale; :mod:`ecomlab.models.conformal`), then
    the policy for a non-negative target (``dims["nonnegative"]``; clipped at zero, zero for an all-zero history)."""
    if offsets:
        scale = np.array([mase_scale(h, int(dims["season_length"])) for h in histories], dtype=np.float64)  # [S]
        prediction = calibrated(prediction, scale, {int(level): q for level, q in offsets.items()})
    return nonnegative_forecasts(prediction, histories) if dims.get("nonnegative", False) else prediction


def _future_dates(ds: pd.Series, horizon: int, freq: str | None) -> pd.DatetimeIndex:
    freq = freq or (pd.infer_freq(pd.DatetimeIndex(ds)) if len(ds) >= 3 else None)
    if freq is None:
        raise ValueError("cannot tell the series' frequency: the bundle records none and the history has "
                         "irregular or too few dates")
    return pd.date_range(ds.iloc[-1], periods=horizon + 1, freq=freq)[1:]


def _future_known(covariates: pd.DataFrame | None, uid: Any, future: pd.DatetimeIndex,
                  columns: Sequence[str]) -> np.ndarray:
    """``[h, len(columns)]`` known-future covariates of series ``uid`` at the ``future`` dates."""
    if not columns:
        return np.zeros((len(future), 0), np.float32)
    if covariates is None:
        raise ValueError(f"this model needs the known-future covariates {list(columns)} over the horizon: pass "
                         "covariates with unique_id, ds and those columns")
    missing = [c for c in ("unique_id", "ds", *columns) if c not in covariates.columns]
    if missing:
        raise ValueError(f"covariates: missing column(s) {missing}")
    rows = covariates[covariates["unique_id"].astype(str) == str(uid)]
    known = rows.set_index(pd.to_datetime(parse_times(rows["ds"], "covariates", "ds", wall_clock=True)))
    if not future.isin(known.index).all():
        raise ValueError(f"covariates: series '{uid}' lacks known-future values for {len(future)} steps from "
                         f"{future[0].date()}")
    return known.loc[future, list(columns)].to_numpy(np.float32)


class BundleGBT:
    """Gradient-boosted trees on lags rebuilt from their bundle; see the module docstring."""

    def __init__(self, root: Path, spec: str, trees: str) -> None:
        self.spec = read_model_spec(root, spec)
        if self.spec["config"].get("_target_") != "ecomlab.models.gbt_lags.GBTLags":
            raise ValueError(f"{Path(root) / spec}: expected the GBTLags forecaster")
        config = {**self.spec["config"], "refit": False}  # no panel to refit on: see the module docstring
        self.net: GBTLags = instantiate_with_dims(OmegaConf.create(config), self.spec["dims"])
        with np.load(Path(root) / trees, allow_pickle=False) as arrays:
            data = {k: arrays[k] for k in arrays.files}
        self.net.models = [NumpyHGB({name.split("_", 1)[1]: value for name, value in data.items()
                                     if name.startswith(f"m{k}_")}) for k in range(int(self.spec["n_models"]))]
        self.net.calibration_errors = data.get("calibration_errors")
        self.net.use_series, self.net.n_futr = bool(self.spec["use_series"]), len(self.spec["futr_columns"])
        self.series = {uid: i for i, uid in enumerate(self.spec["series"])}
        # predict() only reads the panel to refit, which a bundle never does
        self.net.panel = ForecastTrainData(unique_id=list(self.series), ds=[], y=[],
                                           season_length=int(self.spec["dims"]["season_length"]))
        self.attributes = [(name, float(period)) for name, period in self.spec["calendar_attributes"]]

    def forecast(self, history_df: pd.DataFrame, horizon: int | None = None, covariates: pd.DataFrame | None = None,
                 levels: Sequence[int] | None = None) -> pd.DataFrame:
        """``horizon`` steps (default: the trained one; the direct strategy cannot go further, intervals are
        calibrated for the trained horizon) past each series' last date."""
        horizon = int(self.spec["horizon"]) if horizon is None else int(horizon)
        if horizon < 1:
            raise ValueError(f"horizon={horizon}; expected an integer >= 1")
        levels = self.spec["levels"] if levels is None else [int(v) for v in levels]
        if self.net.calibration_errors is None:
            levels = []
        if horizon > self.net.horizon and (self.net.strategy == "direct" or levels):
            raise ValueError(f"this GBT was trained{' (direct strategy)' if self.net.strategy == 'direct' else ''}"
                             f" for horizon {self.net.horizon}; asked for {horizon}"
                             + ("" if self.net.strategy == "direct" else "; pass levels=[] for point forecasts"))
        frame = _check_history(history_df)
        histories, uids, dates, cal, cov, series = [], [], [], [], [], []
        for uid, part in frame.groupby("unique_id", sort=False):
            future = _future_dates(part["ds"], horizon, self.spec["freq"])
            histories.append(part["y"].to_numpy(np.float64))
            cal.append(calendar_features(future.to_numpy("datetime64[ns]"), self.attributes))  # [h, n_cal]
            cov.append(_future_known(covariates, uid, future, self.spec["futr_columns"]))  # [h, n_futr]
            series.append(self.series.get(str(uid), np.nan))  # unseen series: a missing category
            uids.append(uid)
            dates.append(future)
        batch = {"history": histories, "future_calendar": np.stack(cal), "future_covariates": np.stack(cov),
                 "series_index": np.asarray(series, np.float64)}
        return _long_frame(uids, dates, _served(self.net.predict(batch, horizon, levels), histories, self.spec["dims"]))


class BundleLSTM:
    """The global LSTM rebuilt from its bundle; see the module docstring. With ``graph`` the window tensors go
    through the exported ONNX (onnxruntime) or TorchScript graph and only the output head runs in torch."""

    def __init__(self, root: Path, spec: str, weights: str | None = None, scaling: str | None = None,
                 graph: str | None = None, runtime: str | None = None) -> None:
        import torch

        self.spec = read_model_spec(root, spec)
        self.net: LSTMForecaster | ForecastEnsemble = instantiate_with_dims(OmegaConf.create(self.spec["config"]), self.spec["dims"])
        self.runner = None
        if graph is not None:
            if runtime not in GRAPH_FILES:
                raise ValueError(f"{Path(root) / spec}: runtime={runtime!r}; expected one of {list(GRAPH_FILES)}")
            self.runner = _graph_runner(Path(root) / graph, runtime)  # the head needs no trained weights
        elif weights is None or scaling is None:
            raise ValueError(f"{Path(root) / spec}: an LSTM bundle needs a graph or weights and scaling files")
        else:
            with np.load(Path(root) / weights, allow_pickle=False) as arrays:
                self.net.load_state_dict({k: torch.from_numpy(arrays[k]) for k in arrays.files})
            with np.load(Path(root) / scaling, allow_pickle=False) as arrays:
                for lstm in _scaled(self.net):
                    lstm.cov_mean.copy_(torch.from_numpy(arrays["cov_mean"]))
                    lstm.cov_std.copy_(torch.from_numpy(arrays["cov_std"]))
        self.net.eval()
        self.index = {uid: i for i, uid in enumerate(self.spec["series"])}
        self.attributes = [(name, float(period)) for name, period in self.spec["calendar_attributes"]]
        self.futr, self.hist = self.spec["futr_columns"], self.spec["hist_columns"]

    def forecast(self, history_df: pd.DataFrame, horizon: int | None = None, covariates: pd.DataFrame | None = None,
                 levels: Sequence[int] | None = None) -> pd.DataFrame:
        """Forecasts of the trained horizon for known series; ``history_df`` carries the covariate columns over
        the history, ``covariates`` (``unique_id, ds`` + known-future columns) over the horizon."""
        import torch

        h = int(self.spec["horizon"])
        if horizon is not None and int(horizon) != h:
            raise ValueError(f"this LSTM was trained for horizon {h}; asked for {horizon}")
        if self.futr and covariates is None:
            raise ValueError(f"this LSTM needs the known-future covariates {self.futr} over the horizon: pass "
                             "covariates with unique_id, ds and those columns")
        missing = [c for c in self.futr + self.hist if c not in history_df.columns]
        if missing:
            raise ValueError(f"history: missing covariate column(s) {missing}")
        frame = _check_history(history_df, self.futr + self.hist)
        unknown = sorted({str(u) for u in frame["unique_id"]} - set(self.index))
        if unknown:
            raise ValueError(f"series {unknown[:5]} are not in the trained panel; the LSTM embeds series by id")
        series, uids, dates, histories = [], [], [], []
        for local, (uid, part) in enumerate(frame.groupby("unique_id", sort=False)):
            histories.append(part["y"].to_numpy(np.float64))
            future = _future_dates(part["ds"], h, self.spec["freq"])
            cov = np.zeros((len(part) + h, len(self.futr) + len(self.hist)), np.float32)  # [T + h, C]
            cov[: len(part)] = part[self.futr + self.hist].to_numpy(np.float32)
            cov[len(part):, : len(self.futr)] = _future_known(covariates, uid, future, self.futr)  # [h, n_futr]
            ds = np.concatenate([part["ds"].to_numpy("datetime64[ns]"), future.to_numpy("datetime64[ns]")])
            y = np.concatenate([part["y"].to_numpy(np.float64), np.zeros(h)])  # the horizon is never read
            series.append(Series(str(uid), ds, y, cov, calendar_features(ds, self.attributes), index=local))
            uids.append(uid)
            dates.append(future)
        tensors = WindowTensors(series, int(self.spec["input_size"]), h, len(self.futr))
        local_index = np.arange(len(series), dtype=np.int64)
        cutoff = np.array([len(s.y) - h for s in series], dtype=np.int64)  # first forecast step of each series
        batch = tensors.cut(local_index, cutoff, with_target=False)
        batch["series_index"] = torch.tensor([self.index[str(u)] for u in uids])  # the trained embedding rows
        levels = self.spec["levels"] if levels is None else [int(v) for v in levels]
        if self.runner is None:
            return _long_frame(uids, dates, _served(self.net.predict(batch, h, levels), histories, self.spec["dims"],
                                                    self.spec.get("interval_offsets")))
        raw, loc, scale = self.runner(batch)
        with torch.random.fork_rng():  # the in-memory predict's seeded stream, for sampled quantiles
            torch.manual_seed(0)
            prediction = self.net.forecasts(raw, loc, scale, levels)
        return _long_frame(uids, dates, _served(prediction, histories, self.spec["dims"],
                                                self.spec.get("interval_offsets")))


class BundleForecaster:
    """A local forecaster rebuilt from its bundle spec; see the module docstring."""

    def __init__(self, root: Path, path: str) -> None:
        spec = read_model_spec(root, path)
        self.net: Forecaster = instantiate_with_dims(OmegaConf.create(spec["config"]), spec["dims"])
        self.levels: list[int] = [int(v) for v in spec["levels"]]
        self.freq: str | None = spec["freq"]
        self.horizon = int(spec["horizon"])
        self.dims: dict[str, Any] = spec["dims"]

    def forecast(self, history_df: pd.DataFrame, horizon: int | None = None, covariates: pd.DataFrame | None = None,
                 levels: Sequence[int] | None = None) -> pd.DataFrame:
        """Forecasts for every series of ``history_df`` (``unique_id, ds, y``), ``horizon`` steps (default: the
        run's) past each series' last date, as a long frame ``unique_id, ds, y_hat[, lo_80, hi_80, ..., q0.1,
        ...]``."""
        if covariates is not None:
            raise ValueError(f"{type(self.net).__name__} uses no covariates; call forecast without them")
        horizon = self.horizon if horizon is None else int(horizon)
        if horizon < 1:
            raise ValueError(f"horizon={horizon}; expected an integer >= 1")
        levels = self.levels if levels is None else [int(v) for v in levels]
        frame = _check_history(history_df)
        groups = [(uid, part) for uid, part in frame.groupby("unique_id", sort=False)]
        histories = [part["y"].to_numpy(np.float64) for _, part in groups]
        prediction = self.net.predict({"history": histories}, horizon, levels)  # {"y_hat": [S, h], ...}
        dates = [_future_dates(part["ds"], horizon, self.freq) for _, part in groups]
        return _long_frame([uid for uid, _ in groups], dates, _served(prediction, histories, self.dims))


def _check_history(history_df: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    """``unique_id, ds, y`` and the ``extra`` (covariate) columns, checked and sorted by series and date. The
    columns travel together, so a frame with a repeated index (e.g. ``pd.concat`` of per-series frames) keeps
    each row's covariates on that row."""
    missing = [c for c in ("unique_id", "ds", "y") if c not in history_df.columns]
    if missing:
        raise ValueError(f"history: missing column(s) {missing}; expected a long frame unique_id, ds, y")
    frame = history_df[["unique_id", "ds", "y", *extra]].reset_index(drop=True)
    # the data sets' own parser: every ISO-8601 form, rows that fail named, and no per-request pandas warning
    frame["ds"] = pd.to_datetime(parse_times(frame["ds"], "history", "ds", wall_clock=True))
    y = pd.to_numeric(frame["y"], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(y.to_numpy(np.float64)))
    if len(bad):
        raise ValueError(f"history: column 'y' is missing or not a finite number at rows {bad[:5].tolist()}")
    frame["y"] = y
    if frame.duplicated(["unique_id", "ds"]).any():
        raise ValueError("history: duplicate (unique_id, ds) rows")
    if frame.empty:
        raise ValueError("history: no rows")
    return frame.sort_values(["unique_id", "ds"], kind="stable")
