"""Basic authentication of the API listener (http-api.md §9.1)."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping

from resonate.core.errors import Code, ResonateError

BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="resonate"'}


def unauthorized(detail: str) -> ResonateError:
    return ResonateError(Code.UNAUTHORIZED, detail)


def check_basic(header: str | None, users: Mapping[str, str]) -> None:
    """Raise 401 unless ``header`` carries Basic credentials of a configured user.

    Passwords are compared in constant time, and an unknown user costs the same comparison, so
    timing does not tell which part was wrong.
    """
    if not header:
        raise unauthorized("credentials are required")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise unauthorized("Basic credentials are required")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 once decoded
        raise unauthorized("malformed Basic credentials") from None
    user, sep, password = decoded.partition(":")
    expected = users.get(user)
    matched = hmac.compare_digest(password.encode(), (expected or "\x00" + password).encode())
    if not sep or expected is None or not matched:
        raise unauthorized("invalid credentials")
