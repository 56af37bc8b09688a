"""Compensation model."""
