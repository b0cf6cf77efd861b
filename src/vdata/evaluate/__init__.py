"""vdata evaluate stage."""
