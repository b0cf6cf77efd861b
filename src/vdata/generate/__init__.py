"""vdata generate stage."""
