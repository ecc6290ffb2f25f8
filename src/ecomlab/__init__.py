"""ecomlab: e-commerce marketing analytics research framework (recommendation and sales forecasting)."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def load(bundle: Any) -> Any:
    """Load an exported model bundle (see :func:`ecomlab.export.api.load`); imported lazily so that
    ``import ecomlab`` stays light."""
    from ecomlab.export.api import load as _load

    return _load(bundle)
