"""Pipeline model."""
