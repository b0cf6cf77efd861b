"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis): never a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import MODERATOR_TOKEN, Server

# Bounded so the whole server suite stays within its CI budget; derandomised so a failure reproduces.
EXAMPLES = 80


@pytest.mark.parametrize(
    "mode",
    [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    ids=["positive", "negative"],
)
def test_no_server_errors(seeded_server: Server, mode: schemathesis.GenerationMode) -> None:
    schema = schemathesis.openapi.from_dict(seeded_server.http.get("/openapi.json").json())
    strategy = schema.as_strategy(generation_mode=mode)
    failures: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, with_token=st.booleans())
    def run(case: schemathesis.Case, with_token: bool) -> None:
        headers = {"Authorization": f"Bearer {MODERATOR_TOKEN}"} if with_token else None
        response = case.call(base_url=seeded_server.url, headers=headers, timeout=30)
        if response.status_code >= 500:
            failures.append(
                f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}: {response.text[:300]}"
            )
        assert response.status_code < 500, failures[-1]

    run()
    assert not failures
    assert seeded_server.http.get("/readyz").status_code == 200
