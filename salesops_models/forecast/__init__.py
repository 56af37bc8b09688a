"""Forecast model."""
