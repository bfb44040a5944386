"""Metrics, plots and evaluation protocols."""
