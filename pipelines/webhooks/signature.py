"""The webhook signature rule: one assumption, in one place.

AgentClara's docs describe no signature scheme. DESIGN.md assumes the
common one: with a shared secret set, each request carries
`X-AgentClara-Signature: sha256=<hex HMAC-SHA256 of the raw body>`. When a
real delivery shows otherwise (another header, base64, a timestamp in the
signed string), correct it here.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-AgentClara-Signature"
PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header value AgentClara would send for `body` (the sandbox and tests sign with it too)."""
    return PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secret: str) -> bool:
    """Does `header` carry the signature of exactly these bytes? Compared in constant time.

    Missing, without the `sha256=` prefix, or not matching: False. The
    comparison is `hmac.compare_digest` over the whole header value, so how
    long it takes says nothing about how much of a forgery was right.
    """
    if not header:
        return False
    expected = sign(body, secret)
    return hmac.compare_digest(header.strip().lower().encode("utf-8", "replace"), expected.encode("ascii"))
