"""vdata: synthetic debiasing data for language models — generate, audit, debias, evaluate, share."""

__version__ = "0.1.0"
