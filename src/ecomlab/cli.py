"""Command-line error handling shared by the entry points.

Bad input (data, config, run directory) is the user's to fix: it exits with code 2 and one message, without a
traceback, unless ``HYDRA_FULL_ERROR=1`` is set. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from hydra.errors import InstantiationException
from omegaconf.errors import OmegaConfBaseException

from ecomlab.data.bundle import DataValidationError

F = TypeVar("F", bound=Callable[..., Any])

#: errors that mean "your input is wrong", reported without a traceback
USER_ERRORS: tuple[type[BaseException], ...] = (DataValidationError, ValueError, FileNotFoundError,
                                                 OmegaConfBaseException, pickle.UnpicklingError)


def _message(err: BaseException) -> str:
    if isinstance(err, pickle.UnpicklingError):
        # torch.load(weights_only=True) refused a file holding Python objects; its message is a page of advice
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = next((line for line in lines if "WeightsUnpickler error" in line), lines[0] if lines else "")
        return f"refused to load a checkpoint that holds more than weights (it could run code): {detail}"
    return str(err)


class _Progress:
    """Whether Hydra got as far as calling the task function (see :func:`config_errors_exit_2`)."""

    task_started = False


def user_errors_exit_2(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _Progress.task_started = True
        try:
            return fn(*args, **kwargs)
        except (*USER_ERRORS, InstantiationException) as err:
            cause = err.__cause__ if isinstance(err, InstantiationException) else err
            if os.environ.get("HYDRA_FULL_ERROR") == "1" or not isinstance(cause, USER_ERRORS):
                raise
            where = str(err).rsplit("full_key: ", 1)[-1].strip() if cause is not err else ""
            print(f"error: {_message(cause)}" + (f" (config key: {where})" if where else ""), file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper  # type: ignore[return-value]


def config_errors_exit_2(main: F) -> F:
    """Outermost wrapper of a ``@hydra.main`` entry point: a config Hydra cannot compose exits 2, not 1.

    Hydra reports an unknown ``data=``/``model=`` name, a misspelled key or a malformed override in one message
    without a traceback, but exits 1 -- the code it also uses for a crash inside the task. Which one it was
    shows in whether the task (wrapped in :func:`user_errors_exit_2`) was entered: before it, the config is
    the user's to fix (2); after it, the exit 1 is a bug and stays 1.
    """

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _Progress.task_started = False
        try:
            return main(*args, **kwargs)
        except SystemExit as err:
            if err.code == 1 and not _Progress.task_started:
                raise SystemExit(2) from None
            raise

    return wrapper  # type: ignore[return-value]


class _DropLightningTips(logging.Filter):
    """Lightning advertises cloud services at every trainer start; the run output is for results."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def quiet_third_party() -> None:
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropLightningTips())
    # torch 2.13 deprecates LeafSpec checks that Lightning 2.6 still makes on every loop; harmless.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
