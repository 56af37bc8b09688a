"""Quota model."""
