"""Moderation (bearer token from VDATA_MODERATOR_TOKEN): the queue of pending records, approve, reject."""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from vdata.server import store
from vdata.server.responses import json_response
from vdata.server.routers.records import decode_cursor
from vdata.server.state import State

RECORD_ID_PATTERN = r"^[0-9a-f]{16}$"

bearer = HTTPBearer(auto_error=False, description="Moderator token (VDATA_MODERATOR_TOKEN on the server)")


def require_moderator(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    token = state.settings.moderator_token
    if not token:
        raise HTTPException(
            403, "moderation is disabled on this server: it was started without VDATA_MODERATOR_TOKEN"
        )
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401,
            "moderator token required: send Authorization: Bearer TOKEN",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise HTTPException(401, "wrong moderator token", headers={"WWW-Authenticate": "Bearer"})


router = APIRouter(dependencies=[Depends(require_moderator)])


class StatusChange(BaseModel):
    status: Literal["approved", "rejected", "pending"]


@router.put("/v1/records/{record_id}/status", summary="Approve or reject a record (moderators)")
def moderate(
    state: State, record_id: Annotated[str, Path(pattern=RECORD_ID_PATTERN)], change: StatusChange
) -> Response:
    if not store.set_status(state.engine, record_id, change.status):
        raise HTTPException(404, f"no record with id {record_id}")
    return json_response({"id": record_id, "status": change.status})


@router.get("/v1/moderation/queue", summary="Pending records, oldest first (moderators)")
def moderation_queue(
    state: State,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    page_query = store.records_query(
        status="pending",
        columns=store.FULL_COLUMNS,
        after_seq=decode_cursor(cursor),
        limit=min(limit, state.settings.max_page),
    )
    rows, next_cursor = store.fetch_page(state.engine, page_query)
    return json_response({"records": rows, "next_cursor": next_cursor})
