"""The model API: loading models (and adapters) and scoring text with them.

Every stage that needs a language model's probabilities (evaluate, audit's stereotype direction,
loss-guided generation, debias) goes through this package; it sits above `vdata.core` and below the
stages, and never imports a stage.
"""
