"""vdata debias stage."""
