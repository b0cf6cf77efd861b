"""Built-in checks of the verification gate, one module per family (each registers itself on import)."""
