"""GET /moderate (the queue, grouped by contribution batch, with filters and automatic flags) and
POST /moderate (approve or reject one record, a selection or a whole batch, with a reason)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from vdata.server import auth, flags, gate, moderation_store
from vdata.server.pages_admin.render import first, page, read_form
from vdata.server.pages_admin.signin import signin_page
from vdata.server.state import ServerState, server_state

QUEUE_LIMIT = 200
FILTERS = ("contributor", "category", "flag")
ACTIONS = {"approve": "approved", "reject": "rejected"}
# Errors travel in the redirect as codes, so a crafted link cannot put its own words on the page.
FORM_ERRORS = {
    "none-selected": "Select at least one record first (tick its box, or press x on it).",
    "bad-action": "Unknown action; use the page's buttons.",
    "reason-too-long": f"The reason is longer than {moderation_store.MAX_REASON} characters; shorten it.",
}
MAX_FILTER = 200


def _filters(values: dict[str, str]) -> dict[str, str]:
    out = {k: values.get(k, "")[:MAX_FILTER] for k in FILTERS}
    if out["flag"] not in ("", "none", *flags.FLAG_KINDS):
        out["flag"] = ""
    return out


def _queue_context(state: ServerState, filters: dict[str, str]) -> dict[str, Any]:
    engine = state.engine
    batches = moderation_store.pending_queue(
        engine,
        contributor=filters["contributor"] or None,
        category=filters["category"] or None,
        limit=QUEUE_LIMIT,
    )
    records = [r for b in batches for r in b.records]
    found = flags.flag_records(engine, records, flags.flagger())
    if filters["flag"]:
        wanted = filters["flag"]
        for b in batches:
            b.records = [
                r
                for r in b.records
                if (not found[r["id"]] if wanted == "none" else any(f.kind == wanted for f in found[r["id"]]))
            ]
        batches = [b for b in batches if b.records]
    contributors = moderation_store.pending_facet(engine, "contributor")
    return {
        "batches": batches,
        # The gate's report on each batch (absent for batches from before the gate, or with it off).
        "reports": gate.read_reports(engine, [b.batch_id for b in batches if b.batch_id]),
        "flags": found,
        "flag_kinds": flags.FLAG_KINDS,
        "contributors": contributors,
        "categories": moderation_store.pending_facet(engine, "category"),
        "n_pending": sum(n for _, n in contributors),
        "n_shown": sum(len(b.records) for b in batches),
        "limit": QUEUE_LIMIT,
        "index_backlog": flags.index_backlog(engine),
    }


def _notice(params: dict[str, str]) -> str:
    done, n = params.get("done", ""), params.get("n", "")
    if done in ACTIONS.values() and n.isdigit():
        return f"{done.capitalize()} {n} record{'s' if n != '1' else ''}."
    return ""


class FormError(ValueError):
    """A decision the form cannot ask for; the argument is a key of FORM_ERRORS."""


def _decision(form: dict[str, list[str]], moderator: str) -> moderation_store.Decision:
    """What the pressed button asks: one record, a whole batch, or the selected records."""
    reason = first(form, "reason").strip()
    if len(reason) > moderation_store.MAX_REASON:
        raise FormError("reason-too-long")
    one, batch = first(form, "one"), first(form, "batch")
    if one:
        action, _, record_id = one.partition(":")
        ids: tuple[str, ...] = (record_id,)
        batch_id = None
    elif batch:
        action, _, batch_id = batch.partition(":")
        ids = ()
        if not batch_id:
            raise FormError("none-selected")
    else:
        action, ids, batch_id = first(form, "action"), tuple(form.get("id", [])), None
        if not ids:
            raise FormError("none-selected")
    if action not in ACTIONS:
        raise FormError("bad-action")
    return moderation_store.Decision(moderator, ACTIONS[action], reason, ids, batch_id or None)


def add_routes(router: APIRouter) -> None:
    @router.get("/moderate")
    async def moderate_page(request: Request) -> Response:
        state = server_state(request)
        session = auth.session_for(
            state.engine, request.cookies.get(auth.SESSION_COOKIE), state.settings.moderator_token
        )
        if session is None:
            return RedirectResponse("/signin", 303)
        params = dict(request.query_params)
        filters = _filters(params)
        context = await run_in_threadpool(_queue_context, state, filters)
        context |= {
            "moderator": session.moderator,
            "csrf": session.csrf,
            "filters": filters,
            "notice": _notice(params),
            "error": FORM_ERRORS.get(params.get("error", ""), ""),
        }
        return page(request, "moderate.html", context, private=True)

    @router.post("/moderate")
    async def moderate_action(request: Request) -> Response:
        state = server_state(request)
        session = auth.session_for(
            state.engine, request.cookies.get(auth.SESSION_COOKIE), state.settings.moderator_token
        )
        if session is None:
            return signin_page(request, error="Your session ended; sign in again.", status=401)
        form = await read_form(request)
        if not auth.csrf_ok(session.csrf, first(form, "csrf")):
            return Response(
                "Refused: the form's CSRF token is missing or wrong. Reload /moderate and try again.",
                403,
                media_type="text/plain",
                headers={"Cache-Control": "no-store"},
            )
        back = {k: first(form, f"f_{k}") for k in FILTERS}
        query = {k: v for k, v in _filters(back).items() if v}
        try:
            decision = _decision(form, session.moderator)
        except FormError as e:
            return RedirectResponse(f"/moderate?{urlencode({**query, 'error': e.args[0]})}", 303)
        outcome = await run_in_threadpool(moderation_store.decide, state.engine, decision)
        return RedirectResponse(
            f"/moderate?{urlencode({**query, 'done': decision.new_status, 'n': len(outcome.changed)})}", 303
        )
