"""The audit tests' shared Ray: one local Ray (2 CPUs) for the whole session, started on first use."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """`ray`, initialised once (12-14 s measured at load average 17-25); `--engine ray` uses it as it is."""
    ray = pytest.importorskip("ray", reason="--engine ray needs vdata[ray]")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()
