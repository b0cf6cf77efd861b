"""The event loop `vdata gen` runs on: uvloop's when installed (much less CPU per connection event), else asyncio's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A loop factory for `asyncio.Runner(loop_factory=...)`; None means asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
