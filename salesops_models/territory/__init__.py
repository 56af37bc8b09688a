"""Territory model."""
