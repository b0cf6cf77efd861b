"""GET/POST /signin (a token for a session cookie) and POST /signout."""

from __future__ import annotations

import math
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from vdata.core.ratelimit import KeyedTokenBuckets
from vdata.server import auth, moderators
from vdata.server.pages_admin.render import first, page, read_form
from vdata.server.state import server_state

TTL_HOURS = int(auth.SESSION_TTL.total_seconds() // 3600)


def signin_page(request: Request, *, error: str = "", status: int = 200) -> Response:
    state = server_state(request)
    csrf = secrets.token_urlsafe(32)
    response = page(
        request,
        "signin.html",
        {
            "csrf": csrf,
            "error": error,
            "ttl_hours": TTL_HOURS,
            "disabled": not auth.moderation_enabled(state.engine, state.settings.moderator_token),
        },
        status,
        private=True,
    )
    # Double-submit: the form's hidden field must match this cookie, which another site cannot read or set.
    response.set_cookie(auth.SIGNIN_CSRF_COOKIE, csrf, **auth.cookie_options(request))  # type: ignore[arg-type]
    return response


def add_routes(router: APIRouter, limiter: KeyedTokenBuckets) -> None:
    @router.get("/signin")
    def signin_form(request: Request) -> Response:
        state = server_state(request)
        if auth.session_for(
            state.engine, request.cookies.get(auth.SESSION_COOKIE), state.settings.moderator_token
        ):
            return RedirectResponse("/moderate", 303)
        return signin_page(request)

    @router.post("/signin")
    async def signin(request: Request) -> Response:
        state = server_state(request)
        address = auth.client_address(request)
        wait = limiter.wait(address)  # only failed sign-ins are counted (below), but any attempt waits
        if wait > 0:
            response = signin_page(
                request,
                error=f"Too many sign-in attempts from your address; try again in {math.ceil(wait)} s.",
                status=429,
            )
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return response
        form = await read_form(request)
        if not auth.csrf_ok(request.cookies.get(auth.SIGNIN_CSRF_COOKIE), first(form, "csrf")):
            return signin_page(
                request, error="The form expired or came from another site; please sign in again.", status=403
            )
        token = first(form, "token").strip()
        name = (
            await run_in_threadpool(
                moderators.authenticate, state.engine, token, state.settings.moderator_token
            )
            if token
            else None
        )
        if name is None:
            limiter.take(address)
            return signin_page(request, error="Wrong or revoked token.", status=401)
        cookie, _ = await run_in_threadpool(auth.create_session, state.engine, name)
        response = RedirectResponse("/moderate", 303)
        response.set_cookie(
            auth.SESSION_COOKIE,
            cookie,
            max_age=int(auth.SESSION_TTL.total_seconds()),
            **auth.cookie_options(request),  # type: ignore[arg-type]
        )
        response.delete_cookie(auth.SIGNIN_CSRF_COOKIE, path="/")
        return response

    @router.post("/signout")
    async def signout(request: Request) -> Response:
        state = server_state(request)
        cookie = request.cookies.get(auth.SESSION_COOKIE)
        session = auth.session_for(state.engine, cookie, state.settings.moderator_token)
        form = await read_form(request)
        if session is not None and cookie:
            if not auth.csrf_ok(session.csrf, first(form, "csrf")):
                return signin_page(request, error="Sign-out refused: the form token is wrong.", status=403)
            auth.end_session(state.engine, cookie)
        response = RedirectResponse("/", 303)
        response.delete_cookie(auth.SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response
