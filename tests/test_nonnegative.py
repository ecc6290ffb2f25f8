"""A non-negative target (demand data): the flag the data module infers from the training parts, the policy every
forecast passes through (censored at zero, zero for an all-zero history), the hurdle log-normal head, and every
forecasting model config run through the real runner on an intermittent panel with an all-zero series."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

import ecomlab
from ecomlab.data.bundle import DatasetBundle, build_bundle
from ecomlab.data.forecast_datamodule import ForecastDataModule
from ecomlab.data.splits import RollingOrigin
from ecomlab.export.writer import export_run
from ecomlab.models.forecast_heads import (
    HeadForTarget,
    HurdleLogNormalHead,
    NegativeBinomialHead,
    NonNegativeQuantileHead,
    QuantileHead,
    select_head,
)
from ecomlab.models.nonnegative import all_zero, nonnegative_forecasts
from ecomlab.train import train
from ecomlab.utils import config_dir

HORIZON = 7


class PanelSource:
    """An in-memory sales panel (the data contract)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def load(self) -> DatasetBundle:
        return build_bundle("demand_panel", None, sales=self.frame)


def demand_panel(n: int = 84, seed: int = 0) -> pd.DataFrame:
    """Daily demand of five products: none ever sold, intermittent, dying out (a falling trend that reaches zero),
    launched late (leading zeros), and a steady seller with a weekly pattern."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    series = {
        "never_sold": np.zeros(n),
        "intermittent": rng.poisson(0.3, n) * rng.integers(1, 6, n),
        "dying": np.maximum(0.0, 30.0 - 0.5 * t + rng.normal(0, 1.0, n)).round(),
        "late_launch": np.where(t < 50, 0.0, rng.poisson(4.0, n)),
        "steady": (20 + 8 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 2, n)).round(),
    }
    ds = pd.date_range("2024-01-01", periods=n, freq="D")
    return pd.concat([pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.asarray(y, dtype=float)})
                      for uid, y in series.items()], ignore_index=True)


# --------------------------------------------------------------------------- the policy


def test_forecasts_are_censored_at_zero_and_all_zero_histories_forecast_zero() -> None:
    prediction = {"y_hat": np.array([[-1.0, 2.0], [3.0, 4.0], [np.nan, -0.5]]),
                  "lo_80": np.array([[-3.0, 1.0], [-1.0, 2.0], [-2.0, -1.0]]),
                  "hi_80": np.array([[1.0, 3.0], [5.0, 6.0], [1.0, 0.0]])}
    histories = [np.array([1.0, 0.0]), np.zeros(4), np.array([2.0, np.nan])]
    out = nonnegative_forecasts(prediction, histories)
    np.testing.assert_array_equal(out["y_hat"], [[0.0, 2.0], [0.0, 0.0], [np.nan, 0.0]])  # NaN is not hidden
    np.testing.assert_array_equal(out["lo_80"], [[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(out["hi_80"], [[1.0, 3.0], [0.0, 0.0], [1.0, 0.0]])
    assert prediction["y_hat"][0, 0] == -1.0, "the input is not modified"
    assert all_zero(np.array([0.0, np.nan, 0.0])) and not all_zero(np.array([np.nan])) and not all_zero(np.ones(2))
    with pytest.raises(ValueError, match="rows"):
        nonnegative_forecasts(prediction, histories[:2])


def _module(frame: pd.DataFrame, **kwargs) -> ForecastDataModule:
    dm = ForecastDataModule(PanelSource(frame), RollingOrigin(horizon=HORIZON, n_windows=2, step=HORIZON,
                                                              val_windows=1), season_length=7, **kwargs)
    dm.setup()
    return dm


def test_the_flag_is_inferred_from_the_training_parts_only() -> None:
    frame = demand_panel()
    dm = _module(frame)
    assert dm.nonnegative and dm.dims["nonnegative"] is True and dm.train_data().nonnegative
    assert dm.protocol()["nonnegative"] is True
    # a negative value inside an evaluation window (the last 2 x 7 days) decides nothing: no look-ahead
    late = frame.index[(frame.unique_id == "steady") & (frame.ds == frame.ds.max())]
    frame.loc[late, "y"] = -5.0
    assert _module(frame).nonnegative
    # one negative training value (a return booked as negative sales) makes the target real-valued
    early = frame.index[(frame.unique_id == "steady") & (frame.ds == frame.ds.min())]
    frame.loc[early, "y"] = -1.0
    real = _module(frame)
    assert not real.nonnegative and not real.dims["nonnegative"] and not real.train_data().nonnegative
    # data.nonnegative overrides the inference either way
    assert _module(frame, nonnegative=True).nonnegative and not _module(demand_panel(), nonnegative=False).nonnegative


# --------------------------------------------------------------------------- the hurdle log-normal head


def _hurdle_raw(pi: float, mu: float, sigma: float, head: HurdleLogNormalHead) -> torch.Tensor:
    """Raw outputs ``[1, 1, 3]`` that give the head the law ``(pi, mu, sigma)``."""
    raw_sigma = math.log(math.expm1(sigma - head.sigma_min))  # softplus^{-1}
    return torch.tensor([[[math.log(pi / (1 - pi)), mu, raw_sigma]]], dtype=torch.float64)


def test_hurdle_lognormal_likelihood_and_quantiles_by_hand() -> None:
    head = HurdleLogNormalHead()
    pi, mu, sigma, scale = 0.3, 0.2, 0.7, 4.0
    raw = _hurdle_raw(pi, mu, sigma, head)
    loc, s = torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), scale, dtype=torch.float64)
    # density of y = 6 in original units: (1 - pi) * LogNormal(6 / scale; mu, sigma) / scale
    y = torch.tensor([[6.0]], dtype=torch.float64)
    expected = -(math.log(1 - pi) + torch.distributions.LogNormal(mu, sigma).log_prob(y / scale).item()
                 - math.log(scale))
    assert head.loss(raw, y, loc, s).item() == pytest.approx(expected, rel=1e-6)
    assert head.loss(raw, torch.zeros(1, 1, dtype=torch.float64), loc, s).item() == pytest.approx(-math.log(pi))
    # quantiles: zero up to pi, then the log-normal quantile of the rescaled level
    levels = [0.1, 0.3, 0.5, 0.9]
    q = head.quantiles(raw, loc, s, levels)[0, 0]  # [R]
    assert q[0].item() == 0.0 and q[1].item() == 0.0
    for level, value in zip(levels[2:], q[2:].tolist(), strict=True):
        z = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor((level - pi) / (1 - pi))).item()
        assert value == pytest.approx(scale * math.exp(mu + sigma * z), rel=1e-6)
    assert head.median(raw, loc, s).item() == pytest.approx(q[2].item())
    # the quantiles are those of the law: the CDF at each is the level (P(Y <= q) = pi + (1 - pi) * F_LN(q / s))
    cdf = pi + (1 - pi) * torch.distributions.LogNormal(mu, sigma).cdf(q[2:] / scale)
    np.testing.assert_allclose(cdf.numpy(), levels[2:], rtol=1e-6)


def test_hurdle_lognormal_trains_to_the_zero_share_and_sizes() -> None:
    """Fitted by its likelihood to demand that is zero 70 % of the time and else log-normal, the head recovers
    the zero share and the median size, and every quantile it gives is non-negative."""
    torch.manual_seed(0)
    head = HurdleLogNormalHead()
    n = 20_000
    sizes = torch.exp(1.0 + 0.5 * torch.randn(n, 1))
    y = torch.where(torch.rand(n, 1) < 0.7, torch.zeros(n, 1), sizes)  # [N, 1]
    raw = torch.zeros(1, 1, 3, requires_grad=True)
    optimizer = torch.optim.Adam([raw], lr=0.05)
    ones = torch.ones(n, 1)
    for _ in range(400):
        optimizer.zero_grad()
        head.loss(raw.expand(n, 1, 3), y, 0 * ones, ones).backward()
        optimizer.step()
    pi, mu, sigma = (t.item() for t in head.parameters_of(raw.detach()))
    assert torch.sigmoid(torch.tensor(pi)).item() == pytest.approx(0.7, abs=0.02)
    assert mu == pytest.approx(1.0, abs=0.05) and sigma == pytest.approx(0.5, abs=0.05)
    q = head.quantiles(raw.detach(), torch.zeros(1, 1), torch.ones(1, 1), [0.025, 0.5, 0.9, 0.975])
    assert (q >= 0).all() and q[0, 0, 0] == 0 and q[0, 0, 1] == 0 and q[0, 0, 2] > 0


def test_nonnegative_quantile_head_is_nonnegative_and_round_trips() -> None:
    torch.manual_seed(0)
    raw = 3 * torch.randn(64, 5, 5, dtype=torch.float64)
    loc, scale = 2 * torch.randn(64, 1, dtype=torch.float64), torch.rand(64, 1, dtype=torch.float64) + 0.1
    head, plain = NonNegativeQuantileHead(), QuantileHead()
    values = head.values(raw, loc, scale)  # [B, h, Q]
    assert (values > 0).all() and (values.diff(dim=-1) > 0).all()
    q = head.quantiles(raw, loc, scale, [0.01, 0.05, 0.5, 0.8, 0.99])
    assert (q >= 0).all() and (q.diff(dim=-1) >= 0).all()
    torch.testing.assert_close(head.median(raw, loc, scale), values[..., 2])
    for h in (head, plain):  # decode -> encode -> decode is exact: what an ensemble of either head combines
        torch.testing.assert_close(h.values(h.raw_from_values(h.values(raw, loc, scale), loc, scale), loc, scale),
                                   h.values(raw, loc, scale), atol=1e-6, rtol=1e-6)  # gaps floored at 1e-6
    # the same pinball loss as the plain head wherever the two heads give the same quantiles
    same = plain.raw_from_values(values, loc, scale)
    y = torch.rand(64, 5, dtype=torch.float64) * 5
    torch.testing.assert_close(head.loss(raw, y, loc, scale), plain.loss(same, y, loc, scale))
    # the plain head can go below zero where the non-negative one cannot
    assert (plain.quantiles(raw, loc, scale, [0.025]) < 0).any()


def test_head_for_target_picks_by_the_flag() -> None:
    choice = HeadForTarget(real=QuantileHead(), nonnegative=HurdleLogNormalHead())
    assert isinstance(select_head(choice, nonnegative=True), HurdleLogNormalHead)
    assert isinstance(select_head(choice, nonnegative=False), QuantileHead)
    plain = NegativeBinomialHead()
    assert select_head(plain, nonnegative=False) is plain and select_head(plain, nonnegative=True) is plain


# --------------------------------------------------------------------------- every model through the runner


def _forecasting_models() -> list[str]:
    """Every model config whose task is the forecasting task: a new forecaster is checked without listing it."""
    models = []
    for path in sorted(Path(config_dir(), "model").glob("*.yaml")):
        if OmegaConf.load(path).get("_target_") == "ecomlab.tasks.forecasting.ForecastTask":
            models.append(path.stem)
    return models


#: sizes that keep a trained model's run to seconds (one short epoch); the policy, not the accuracy, is tested
SMALL = {"lstm": ["model.net.hidden_size=8", "model.net.mlp_size=16"],
         "lstm_deepar": ["model.net.hidden_size=8"],
         "lstm_ensemble": ["model.net.n_members=2", "model.net.member.hidden_size=8", "model.net.member.mlp_size=16"],
         "gbt": ["model.net.max_iter=20", "model.net.calibration_windows=2"]}
#: a trained network with the non-negative head instead of its configured one
HURDLE = ["model.net.head._target_=ecomlab.models.forecast_heads.HurdleLogNormalHead", "~model.net.head.quantiles"]


def _demand_run(compose_cfg, tmp_path: Path, model: str, extra: list[str]) -> tuple[dict, pd.DataFrame]:
    path = tmp_path / "demand.csv"
    demand_panel().to_csv(path, index=False)
    cfg = compose_cfg([f"model={model}", "data=sales-file", f"data.source.path={path}", "data.season_length=7",
                       f"data.backtest.horizon={HORIZON}", f"data.backtest.step={HORIZON}", "data.backtest.n_windows=2",
                       "data.input_size=14", "data.batch_size=16", "data.windows_per_epoch=64",
                       "trainer.max_epochs=1", "logger=[]", *SMALL.get(model.split("+")[0], []), *extra])
    record = train(cfg)
    return record, pd.read_parquet(Path(cfg.paths.output_dir) / "forecasts_test.parquet")


#: slow here (AutoARIMA: half a minute), or repeating observed values so never below zero (the naive family), or
#: the same code path as a fast case (Croston SBA): run by make test-full
SLOW = {"auto_arima", "naive", "naive2", "seasonal_naive", "croston_sba"}


@pytest.mark.parametrize("model", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m
                                   for m in [*_forecasting_models(), "lstm+hurdle"]])
def test_no_model_forecasts_a_negative_demand(compose_cfg, tmp_path: Path, model: str) -> None:
    """On a panel of daily demand (intermittent, dying out, launched late, never sold) every forecaster, with its
    config's defaults, gives no negative point forecast or interval bound, and zero for the product never sold;
    RMSSE (M5) is logged beside MASE."""
    name, _, variant = model.partition("+")
    record, forecasts = _demand_run(compose_cfg, tmp_path, name, HURDLE if variant == "hurdle" else [])
    assert record["protocol"]["nonnegative"] is True
    values = forecasts[[c for c in forecasts.columns if c == "y_hat" or c[:3] in ("lo_", "hi_")]]
    assert np.isfinite(values.to_numpy()).all() and (values.to_numpy() >= 0).all(), values.min()
    never = values[forecasts["unique_id"] == "never_sold"]
    assert len(never) == 2 * HORIZON and (never.to_numpy() == 0).all()
    assert np.isfinite(record["metrics"]["test/rmsse"]) and record["metrics"]["test/rmsse"] > 0
    if "lo_80" in forecasts.columns:
        assert np.isfinite(record["metrics"]["test/scaled_crps"])


def test_the_panel_does_drive_models_below_zero_without_the_policy(compose_cfg, tmp_path: Path) -> None:
    """The check above can fail: with the policy switched off (data.nonnegative=false) ETS's intervals reach below
    zero on this panel."""
    record, forecasts = _demand_run(compose_cfg, tmp_path, "ets", ["+data.nonnegative=false"])
    assert record["protocol"]["nonnegative"] is False
    assert (forecasts["lo_95"] < 0).any()


@pytest.mark.parametrize(("model", "fmt"), [("ets", "native"),
                                           pytest.param("lstm+hurdle", "onnx", marks=pytest.mark.slow)])
def test_served_demand_forecasts_equal_the_evaluated_ones(compose_cfg, tmp_path: Path, model: str, fmt: str) -> None:
    """A bundle serves what the backtest evaluated: the same censoring at zero and zeros for the never-sold
    product (ETS's intervals reach below zero on this panel), and the hurdle head after an ONNX graph."""
    name, _, variant = model.partition("+")
    _, test = _demand_run(compose_cfg, tmp_path, name, HURDLE if variant == "hurdle" else [])
    loaded = ecomlab.load(export_run(tmp_path / "run", fmt, tmp_path / "bundle"))
    first = test[test["window"] == test["window"].min()]
    panel = demand_panel()
    cutoff = first.groupby("unique_id")["ds"].min()
    history = panel[panel["ds"] < panel["unique_id"].map(cutoff)]
    got = loaded.forecast(history, horizon=HORIZON)
    merged = first.merge(got, on=["unique_id", "ds"], suffixes=("", "_served"))
    assert len(merged) == len(first) == len(got)
    for column in ("y_hat", "lo_80", "hi_80", "lo_95", "hi_95"):
        np.testing.assert_allclose(merged[f"{column}_served"], merged[column], rtol=1e-4, atol=1e-6)
    assert (got.loc[got["unique_id"] == "never_sold", ["y_hat", "lo_95", "hi_95"]].to_numpy() == 0).all()
