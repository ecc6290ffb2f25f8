"""Exported models: bundles written from finished runs (``ecomlab-export``), loaded by ``ecomlab.load``.

See :mod:`ecomlab.export.writer` for the bundle layout, :mod:`ecomlab.export.recommenders` for what each model
exports, :mod:`ecomlab.export.api` for the loading API and its fallbacks.
"""

from ecomlab.export.api import LoadedForecaster, LoadedRecommender, Recommendation, SimilarItems, load
from ecomlab.export.manifest import BundleIntegrityError

__all__ = ["BundleIntegrityError", "LoadedForecaster", "LoadedRecommender", "Recommendation", "SimilarItems", "load"]
