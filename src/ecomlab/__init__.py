"""ecomlab: e-commerce marketing analytics research framework (recommendation and sales forecasting)."""

__version__ = "0.1.0"
