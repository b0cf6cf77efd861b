"""Provider batch APIs (`"batch": true`): requests sent as asynchronous jobs at about half the online price.

`base` declares what a provider's batch protocol does (submit, poll, fetch results) and the registry of
protocols by provider name; `openai_batch` and `gemini_batch` implement it; `journal` remembers the jobs
of a run so a rerun picks them up instead of paying again; `runner` drives a run's rounds through them.
"""
