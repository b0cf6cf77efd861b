"""vdata server stage."""
