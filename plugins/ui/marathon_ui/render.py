"""Rendering of the UI's pages, with the headers every page carries."""

from __future__ import annotations

from typing import Any

import jinja2
from starlette.responses import HTMLResponse

from marathon_ui.sessions import session_user

#: Nothing but our own files: no inline script or style, no other origin, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HTML_HEADERS = {"content-security-policy": CONTENT_SECURITY_POLICY}

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("marathon_ui", "templates"),
    # Deployment status entries leave out keys that do not apply (no progress while
    # pending): a missing key renders as nothing.
    autoescape=True,
)
#: Who logged in with the form, for the page header's logout button (``login.py``).
_templates.globals["session_user"] = session_user


def html(template: str, **values: Any) -> HTMLResponse:
    body = _templates.get_template(template).render(**values)
    return HTMLResponse(body, headers=_HTML_HEADERS)
