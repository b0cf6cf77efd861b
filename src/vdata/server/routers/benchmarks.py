"""GET /v1/benchmarks (the history), /v1/benchmarks/latest (the whole newest benchmark.json) and
/v1/benchmarks/badge.svg (a README badge: "StereoSet gender | bias cut 37%")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from starlette.concurrency import run_in_threadpool

from vdata.server import benchmarks
from vdata.server.responses import json_response
from vdata.server.state import State

router = APIRouter()
BADGE_MAX_AGE_S = 600


@router.get("/v1/benchmarks", summary="The dataset's bias benchmarks over time, oldest first")
async def list_benchmarks(state: State) -> Response:
    return json_response({"benchmarks": await run_in_threadpool(benchmarks.history, state.engine)})


@router.get("/v1/benchmarks/latest", summary="The newest benchmark.json, whole")
async def latest_benchmark(state: State) -> Response:
    found = await run_in_threadpool(benchmarks.latest, state.engine)
    if found is None:
        raise HTTPException(
            404,
            "no benchmark stored yet; the operator runs vdata benchmark-dataset and vdata benchmarks import, "
            "or vdata serve --benchmark-every 7d",
        )
    return json_response(found)


@router.get(
    "/v1/benchmarks/badge.svg",
    summary="A badge of the newest StereoSet bias cut for one category (SVG)",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def benchmark_badge(
    state: State,
    category: Annotated[str, Query(pattern=r"^[a-z][a-z0-9+_-]{0,59}$")] = "gender",
) -> Response:
    found = await run_in_threadpool(benchmarks.latest, state.engine)
    label, message, colour = benchmarks.badge_text(found["document"] if found else None, category)
    return Response(
        benchmarks.badge_svg(label, message, colour),
        media_type="image/svg+xml",
        headers={"Cache-Control": f"public, max-age={BADGE_MAX_AGE_S}"},
    )
