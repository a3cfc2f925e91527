"""losses layer."""
