"""Optional shared-secret authentication of webhook requests.

The vendor documents no signature scheme, so the receiver offers the two usual ones; the secret
comes from the environment only and is never logged:

* `hmac` (default): header `X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.
* `bearer`: header `Authorization: Bearer <secret>`.

Comparisons are constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

SIGNATURE_HEADER = "x-webhook-signature"
AUTH_MODES = ("hmac", "bearer")


def sign(secret: str, body: bytes) -> str:
    """The signature header value a sender puts on `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Authenticator:
    secret: str = field(repr=False)
    mode: str = "hmac"

    def __post_init__(self) -> None:
        if self.mode not in AUTH_MODES:
            raise ValueError(f"auth mode must be one of {', '.join(AUTH_MODES)}, got {self.mode!r}")
        if not self.secret:
            raise ValueError("the webhook secret is empty")

    def check(self, headers: Mapping[str, str], body: bytes) -> bool:
        if self.mode == "bearer":
            given = headers.get("authorization", "")
            expected = f"Bearer {self.secret}"
        else:
            given = headers.get(SIGNATURE_HEADER, "")
            expected = sign(self.secret, body)
        return hmac.compare_digest(given.encode(), expected.encode())
