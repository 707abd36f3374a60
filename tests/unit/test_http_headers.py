"""Every answer of every service's app carries the headers that keep a browser from misusing it."""

from flask import Blueprint

from shared.http import CONTENT_SECURITY_POLICY, app_for


def test_answers_carry_csp_nosniff_and_frame_ancestors():
    page = Blueprint("page", __name__)
    page.get("/")(lambda: "<h1>dashboard</h1>")
    client = app_for("test", [page], ping=lambda: None).test_client()
    for path in ("/", "/healthz", "/nothing"):
        answer = client.get(path)
        assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
