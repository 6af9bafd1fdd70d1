"""dropout layers (declared in this module)."""
