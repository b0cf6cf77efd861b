"""The model API: loading models (and adapters) and scoring text with them.

Every stage that needs a language model's probabilities (evaluate, audit's stereotype direction,
loss-guided generation, debias) goes through this package; it sits above `vdata.core` and below the
stages, and never imports a stage.

  models.py     load_model -> LoadedModel (causal or masked; `vdata debias` adapters applied)
  bottleneck.py vdata's own bottleneck (Pfeiffer) adapter
  scorer.py     the `Scorer` interface and `scorer_for(lm, ...)`, which picks the implementation:
  causal.py     CausalScorer: token / sentence / grouped log-probabilities, pairs, perplexity
  masked.py     MaskedScorer: masked-token log-probabilities, CrowS-Pairs pairs
  packing.py    shared-prefix packing for the causal scorer; batching.py: length buckets, padding
"""
