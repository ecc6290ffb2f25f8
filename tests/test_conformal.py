"""Conformalized intervals: the CQR offset formula, how bounds move, coverage on exchangeable data, the task."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from ecomlab.data.forecast_datamodule import ForecastDataModule
from ecomlab.data.splits import RollingOrigin
from ecomlab.models.conformal import calibrated, conformal_offsets
from ecomlab.tasks.forecasting import ForecastTask
from test_lstm_forecaster import (  # the LSTM tests' panel (tests/ is on sys.path)
    SinePanel,
    datamodule,
    net_for,
)


def test_offset_is_the_ceil_n_plus_one_level_th_smallest_scaled_score() -> None:
    y = np.zeros((9, 1))
    lo, hi = -np.ones((9, 1)), np.ones((9, 1))
    y[:, 0] = np.arange(9) - 4.0  # scores max(-1 - y, y - 1): 3, 2, 1, 0, -1, 0, 1, 2, 3
    scale = np.full(9, 2.0)  # scores halved
    # n = 9, l = 0.8: the ceil(10 * 0.8) = 8th smallest of (-1, 0, 0, 1, 1, 2, 2, 3, 3) / 2
    assert conformal_offsets(y, lo, hi, scale, 80)[0] == pytest.approx(1.5)
    # l = 0.5: the 5th smallest; l = 0.95: ceil(9.5) = 10 > n, the largest
    assert conformal_offsets(y, lo, hi, scale, 50)[0] == pytest.approx(0.5)
    assert conformal_offsets(y, lo, hi, scale, 95)[0] == pytest.approx(1.5)
    # missing targets and unusable scales are left out; a step with nothing left gets 0
    y2 = np.c_[y, np.full(9, np.nan)]
    bad = scale.copy()
    bad[[0, 8]] = [0.0, np.nan]  # drop the two scores of 3
    q = conformal_offsets(y2, np.c_[lo, lo], np.c_[hi, hi], bad, 80)
    assert q[0] == pytest.approx(1.0) and q[1] == 0.0
    with pytest.raises(ValueError, match="percentage"):
        conformal_offsets(y, lo, hi, scale, 100)


def test_calibrated_moves_bounds_by_offset_times_scale_keeping_order_and_nesting() -> None:
    prediction = {"y_hat": np.array([[10.0, 10.0, 10.0]]), "lo_80": np.array([[8.0, 8.0, 8.0]]),
                  "hi_80": np.array([[12.0, 12.0, 12.0]]), "lo_95": np.array([[7.0, 7.0, 7.0]]),
                  "hi_95": np.array([[13.0, 13.0, 13.0]])}
    # 80% widened by 1 x scale 2 on step 1, narrowed past the point on step 2; the horizon (3) outruns the
    # offsets (2), so step 3 reuses step 2's; 95% is not calibrated but must still hold the 80% interval
    out = calibrated(prediction, np.array([2.0]), {80: [1.0, -3.0]})
    np.testing.assert_allclose(out["lo_80"], [[6.0, 10.0, 10.0]])
    np.testing.assert_allclose(out["hi_80"], [[14.0, 10.0, 10.0]])
    np.testing.assert_allclose(out["lo_95"], [[6.0, 7.0, 7.0]])
    np.testing.assert_allclose(out["hi_95"], [[14.0, 13.0, 13.0]])
    np.testing.assert_array_equal(out["y_hat"], prediction["y_hat"])
    unusable = calibrated(prediction, np.array([np.nan]), {80: [1.0, 1.0, 1.0]})
    for key, value in prediction.items():
        np.testing.assert_array_equal(unusable[key], value)


def test_calibration_brings_a_miscalibrated_interval_to_nominal_coverage_on_exchangeable_data() -> None:
    rng = np.random.default_rng(0)
    n, h = 4000, 3
    scale = rng.uniform(0.5, 2.0, 2 * n)  # series of different sizes share one calibration
    y = rng.normal(size=(2 * n, h)) * scale[:, None]
    y_hat = np.zeros((2 * n, h))
    for width in (0.3, 3.0):  # far too narrow, far too wide
        lo, hi = y_hat - width * scale[:, None], y_hat + width * scale[:, None]
        q = conformal_offsets(y[:n], lo[:n], hi[:n], scale[:n], 80)
        out = calibrated({"y_hat": y_hat[n:], "lo_80": lo[n:], "hi_80": hi[n:]}, scale[n:], {80: q})
        covered = ((y[n:] >= out["lo_80"]) & (y[n:] <= out["hi_80"])).mean()
        before = ((y[n:] >= lo[n:]) & (y[n:] <= hi[n:])).mean()
        assert abs(before - 0.8) > 0.15 and abs(covered - 0.8) < 0.02, (width, before, covered)


def test_task_calibrates_test_intervals_on_validation_windows_and_leaves_the_point_forecast() -> None:
    dm = datamodule(windows_per_epoch=128)  # one validation window before the two test windows
    results = {}
    for calibrate in (False, True):
        pl.seed_everything(0)
        task = ForecastTask(net_for(dm), season_length=7, optimizer=partial(torch.optim.Adam, lr=1e-2),
                            calibrate=calibrate)
        task.prepare(dm.train_data())
        trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
        trainer.fit(task, datamodule=dm)
        trainer.test(task, datamodule=dm, verbose=False)
        results[calibrate] = (task.forecasts["test"], dict(task.interval_offsets))
    (plain, none), (cal, offsets) = results[False], results[True]
    assert none == {} and set(offsets) == {80, 95} and all(q.shape == (7,) for q in offsets.values())
    np.testing.assert_allclose(cal["y_hat"], plain["y_hat"])
    assert not np.allclose(cal["lo_80"], plain["lo_80"])
    # the data module without validation windows: nothing to calibrate on
    no_val = ForecastDataModule(SinePanel(), RollingOrigin(horizon=7, n_windows=2, step=7, val_windows=0),
                                season_length=7, input_size=21)
    no_val.setup()
    assert not no_val.has_validation
    assert ForecastTask(net_for(no_val), season_length=7, calibrate=True,
                        optimizer=partial(torch.optim.Adam)).calibrate_intervals(no_val) == {}
