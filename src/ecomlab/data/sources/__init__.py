"""Loaders for public datasets: one module per dataset family, each mapping raw files to the data contract."""
