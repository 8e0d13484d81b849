"""Signing Flywheel's outgoing webhooks, and checking a signature on the receiving side.

Every webhook Flywheel sends (retrain and deploy backends) carries:

    X-Flywheel-Timestamp: 1795000000                Unix seconds when it was signed
    X-Flywheel-Signature: v1=<hex>                  HMAC-SHA256 of "<timestamp>.<raw body>" under the secret
    Idempotency-Key: flywheel-work-<work item id>   the same on every repeat of one piece of work

A receiver recomputes the signature over the raw bytes it received with `verify_signature` and refuses
old timestamps, so a captured request can't be replayed later. A resumed worker may send the same
request twice; the idempotency key lets the receiver do it once.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from pydantic import SecretStr

TIMESTAMP_HEADER = "X-Flywheel-Timestamp"
SIGNATURE_HEADER = "X-Flywheel-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Flywheel-Event"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def _key(secret: str | bytes | SecretStr) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret if isinstance(secret, bytes) else secret.encode()


def signature(secret: str | bytes | SecretStr, timestamp: int | str, body: bytes) -> str:
    """`v1=<hex>`: HMAC-SHA256 of the timestamp, a dot and the raw body."""
    mac = hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str | bytes | SecretStr, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: signature(secret, stamp, body)}


def verify_signature(secret: str | bytes | SecretStr, timestamp: str | int | None, body: bytes,
                     signature_header: str | None, tolerance: float = DEFAULT_TOLERANCE_SECONDS, *,
                     now: float | None = None) -> bool:
    """True when `signature_header` signs this body and timestamp and the timestamp is recent.

    The header may hold several comma-separated `v1=` values (a secret being rotated); one match is enough.
    """
    if timestamp is None or not signature_header:
        return False
    try:
        stamp = int(str(timestamp).strip())
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance:
        return False
    expected = signature(secret, stamp, body)
    return any(hmac.compare_digest(expected.encode(), candidate.strip().encode())
               for candidate in signature_header.split(","))
