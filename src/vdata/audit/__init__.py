"""vdata audit stage."""
