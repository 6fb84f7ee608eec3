"""PKCE (RFC 7636) with S256: the verifier stays on the server, only its hash travels through the browser."""

from __future__ import annotations

import base64
import hashlib
import secrets

# RFC 7636 §4.1: 43-128 characters from [A-Z a-z 0-9 - . _ ~]; 64 random bytes encode to 86 of them.
_VERIFIER_BYTES = 64


def new_verifier() -> str:
    return secrets.token_urlsafe(_VERIFIER_BYTES)


def s256_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(ASCII(verifier)))`` without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
