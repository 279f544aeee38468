"""The anti-forgery token of the statistics pages' forms (a signed double-submit cookie).

The admin page sets a cookie with a random nonce and its HMAC under a key of this process,
and puts the same token in a hidden field of each form. A POST must carry both, equal and
signed: another site can make a browser send our cookie (not with SameSite=Strict, but
older browsers) yet can neither read it nor sign one of its own for the field. A restart
of the web process makes a new key: an open form then says to reload the page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

COOKIE = "af_form"
FIELD = "form_token"


class FormTokens:
    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    def _mac(self, nonce: str) -> str:
        return hmac.new(self.key, nonce.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._mac(nonce)}"

    def valid(self, token: str | None) -> bool:
        if not token or len(token) > 200 or token.count(".") != 1:
            return False
        nonce, mac = token.split(".")
        return hmac.compare_digest(mac, self._mac(nonce))

    def refusal(self, cookie: str | None, field: str | None) -> str | None:
        """Why a form's POST is not ours, or None when its token and cookie agree."""
        if not self.valid(cookie) or not field or not hmac.compare_digest(cookie, field):
            return "the form's anti-forgery token is missing or stale: reload the page"
        return None

    def cookie_header(self, token: str) -> str:
        return f"{COOKIE}={token}; Path=/stats; HttpOnly; SameSite=Strict"
