"""norm layers (declared in this module)."""
