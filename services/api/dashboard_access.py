"""Who sees the dashboard: a login form that takes an API key and starts a session, a logout, and the
caller of a dashboard request (its session, or an ``Authorization: Bearer`` header as the API takes).

The key travels once, in the login form's POST body (never in a URL, which access logs and browser
history keep). Both forms carry the session's CSRF token: a login starts from a token set by the
login page, so another site cannot log a browser in with its own key, nor log it out. A successful
login replaces the token.
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request

from services.api.sessions import Sessions, new_token, token_matches
from shared.access import ApiKeys, Caller

LOGIN_PATH = "/login"


def caller_of(keys: ApiKeys, sessions: Sessions) -> Caller | None:
    """The dashboard request's caller: a Bearer header, else its session's key (while still configured)."""
    caller = keys.caller(request.headers.get("Authorization"))
    if caller is None:
        key_id = sessions.read(request).get("key")
        caller = keys.caller_by_id(key_id) if isinstance(key_id, str) else None
    return caller


def add_login(bp: Blueprint, keys: ApiKeys, sessions: Sessions) -> None:
    """``GET /login`` (the form), ``POST /login`` (303 to the dashboard, or 401 with the form again),
    ``POST /logout`` (303 to the form). A form whose token is not its session's is a 403."""

    def page(error: str | None, status: int) -> Response:
        session = sessions.read(request)
        token = session.get("csrf") if isinstance(session.get("csrf"), str) else new_token()
        response = Response(render_template("login.html", csrf=token, error=error), status,
                            mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        sessions.write(response, request, {**session, "csrf": token})
        return response

    def forged() -> Response:
        return Response("this form's CSRF token is not this session's: reload the page and send it again\n",
                        403, mimetype="text/plain")

    @bp.get(LOGIN_PATH)
    def login_form():
        return page(None, 200)

    @bp.post(LOGIN_PATH)
    def login():
        if not token_matches(sessions.read(request), request.form.get("csrf")):
            return forged()
        caller = keys.caller_of_key((request.form.get("key") or "").strip())
        if caller is None:
            return page("not a known API key", 401)
        if not caller.may("read"):
            return page("this key lacks the 'read' scope the dashboard needs", 403)
        response = redirect("./", 303)
        sessions.write(response, request, {"key": caller.key_id, "csrf": new_token()})
        return response

    @bp.post("/logout")
    def logout():
        if not token_matches(sessions.read(request), request.form.get("csrf")):
            return forged()
        response = redirect("login", 303)
        sessions.clear(response)
        return response

