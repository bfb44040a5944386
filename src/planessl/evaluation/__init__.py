"""Metrics, the few-label protocol, tables and plots."""
