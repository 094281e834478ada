"""Authentication and authorisation (http-api.md §9, protocol-2026.md §9).

Authentication turns the credentials of a request into a :class:`Principal`:

- Basic (§9.1): a configured user and password; full access.
- JWT bearer (§9.2): a signed token verified with the configured public key (RSA, EC or
  Ed25519; the algorithm comes from the token's header and must fit the key; ``none`` and HMAC
  are never accepted); ``exp`` is required, ``nbf`` and ``iat`` are checked when present, with
  a small leeway; ``iss`` and ``aud`` when configured. Claims: ``role: admin`` (any case) has
  full access; otherwise the ``prefix`` claim limits every id the request names.
- Both (§9.3): the scheme of the ``Authorization`` header selects the check.

Authorisation checks the ids a request names against the principal (the ``authorize_*``
functions). Nothing here logs, and no error message repeats a credential: a token, a password
or a key never reaches a log line or an error body.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from resonate.core.errors import Code, ResonateError

BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="resonate"'}
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="resonate"'}
BOTH_CHALLENGES = {"WWW-Authenticate": 'Basic realm="resonate", Bearer realm="resonate"'}

# Clock skew tolerated on exp, nbf and iat (§9.2: "leeway up to 30 s").
DEFAULT_LEEWAY_SECONDS = 30
MAX_LEEWAY_SECONDS = 30

# Task ids of the REST protocol start with one of these, then the (root) promise id (§4.1).
TASK_ID_PREFIXES = ("__invoke:", "__resume:", "__notify:")


def unauthorized(detail: str) -> ResonateError:
    return ResonateError(Code.UNAUTHORIZED, detail)


def forbidden(detail: str) -> ResonateError:
    return ResonateError(Code.FORBIDDEN, detail)


# ---- principals -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: ``everything`` (no auth, Basic, an admin token, an empty
    ``prefix``), or a token limited to ids starting with ``prefix``; ``prefix`` None (a token
    with neither an admin role nor a prefix) may only do what needs no authorisation."""

    everything: bool
    prefix: str | None = None

    @property
    def restricted(self) -> bool:
        return not self.everything

    def allows(self, resource_id: str) -> bool:
        if self.everything:
            return True
        return self.prefix is not None and resource_id.startswith(self.prefix)


EVERYTHING = Principal(everything=True)
NOBODY = Principal(everything=False)  # what a request not authenticated by the middleware gets

# The principal the listener's middleware authenticated; a handler reached without it (which
# the middleware does not allow) is refused everything that needs authorisation.
PRINCIPAL = web.RequestKey("principal", Principal)


def principal_of(request: web.Request) -> Principal:
    principal = request.get(PRINCIPAL)
    return principal if isinstance(principal, Principal) else NOBODY


def principal_of_claims(claims: Mapping[str, Any]) -> Principal:
    role = claims.get("role")
    if isinstance(role, str) and role.lower() == "admin":
        return EVERYTHING
    prefix = claims.get("prefix")
    if not isinstance(prefix, str):
        return Principal(everything=False, prefix=None)
    if prefix == "":
        return EVERYTHING
    return Principal(everything=False, prefix=prefix)


# ---- authorisation --------------------------------------------------------------------------


def _refuse(principal: Principal, what: str, value: str) -> ResonateError:
    if principal.prefix is None:
        return forbidden("the token has neither the admin role nor a prefix claim")
    return forbidden(f"the token's prefix does not cover the {what} {value!r}")


def authorize_ids(principal: Principal, ids: Mapping[str, str | None] | None = None) -> None:
    """403 unless every id (``{what: id}``; None values are skipped) starts with the prefix."""
    if principal.everything:
        return
    if principal.prefix is None:
        raise _refuse(principal, "", "")
    for what, value in (ids or {}).items():
        if value is not None and not principal.allows(value):
            raise _refuse(principal, what, value)


def authorize_id(principal: Principal, what: str, value: str) -> None:
    if not principal.everything:  # checked first: the common case, without building a dict
        authorize_ids(principal, {what: value})


def task_id_allowed(principal: Principal, task_id: str) -> bool:
    """The task-id rule (§9.2): ``__invoke:<prefix>…``, ``__resume:<prefix>…`` or
    ``__notify:<prefix>…``."""
    if principal.everything:
        return True
    if principal.prefix is None:
        return False
    return any(task_id.startswith(kind + principal.prefix) for kind in TASK_ID_PREFIXES)


def authorize_task_id(principal: Principal, task_id: str) -> None:
    if not task_id_allowed(principal, task_id):
        raise _refuse(principal, "task id", task_id)


def literal_prefix(pattern: str) -> str:
    """What every id a search pattern matches starts with: the text before the first ``*``."""
    return pattern.partition("*")[0]


def authorize_pattern(principal: Principal, what: str, pattern: str | None) -> None:
    """403 unless every id the search pattern can match starts with the prefix: a restricted
    principal's pattern must begin with the prefix itself, before any wildcard. A missing
    pattern (None) is refused to a restricted principal."""
    if principal.everything:
        return
    if pattern is None or not principal.allows(literal_prefix(pattern)):
        raise _refuse(principal, what, pattern or "*")


def authorize_task_pattern(principal: Principal, pattern: str) -> None:
    if not task_id_allowed(principal, literal_prefix(pattern)):
        raise _refuse(principal, "task id pattern", pattern)


def authorize_everything(principal: Principal, what: str) -> None:
    """403 for a restricted principal: ``what`` reaches ids of every prefix."""
    if principal.restricted:
        raise forbidden(f"{what} is not allowed to a token limited to a prefix")


# ---- Basic ----------------------------------------------------------------------------------


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


# ---- JWT ------------------------------------------------------------------------------------


class KeyLoadError(ValueError):
    """The configured public key cannot be used; the message is one line and never holds the
    key text (only the file name, when it is a file)."""


_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
MIN_RSA_BITS = 2048


def _algorithms_for(key: Any) -> tuple[str, ...]:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyLoadError(f"RSA key of {key.key_size} bits (at least {MIN_RSA_BITS} needed)")
        return _RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        algorithm = _EC_ALGORITHMS.get(key.curve.name)
        if algorithm is None:
            raise KeyLoadError(
                f"EC curve {key.curve.name} is not supported (P-256, P-384 or P-521)"
            )
        return (algorithm,)
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return ("EdDSA",)
    raise KeyLoadError(
        f"{type(key).__name__.lstrip('_')} keys are not supported (RSA, EC or Ed25519)"
    )


def load_public_key(value: str) -> tuple[Any, tuple[str, ...]]:
    """The key of ``api.auth.publicKey`` (PEM text, or the path of a PEM file holding a public
    key or a certificate) and the JWS algorithms it may verify."""
    if "-----BEGIN" in value:
        text, where = value.encode(), "inline PEM"
    else:
        path = Path(value).expanduser()
        where = f"key file {str(path)!r}"
        try:
            text = path.read_bytes()
        except OSError as error:
            raise KeyLoadError(f"cannot read {where}: {error.strerror or error}") from None
    try:
        if b"-----BEGIN CERTIFICATE" in text:
            key: Any = x509.load_pem_x509_certificate(text).public_key()
        else:
            key = load_pem_public_key(text)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyLoadError(
            f"{where} does not hold a PEM public key (SubjectPublicKeyInfo) or certificate"
        ) from None
    try:
        return key, _algorithms_for(key)
    except KeyLoadError as error:
        raise KeyLoadError(f"{where}: {error}") from None


# PyJWT's errors, in the order of their classes (subclasses first), as fixed messages: the
# library's own text may quote parts of the token.
_TOKEN_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not yet valid"),
    (jwt.InvalidAudienceError, "the token's audience does not match"),
    (jwt.InvalidIssuerError, "the token's issuer does not match"),
    (jwt.InvalidAlgorithmError, "the token's algorithm does not fit the configured key"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidKeyError, "the token's algorithm does not fit the configured key"),
)


@dataclass(frozen=True)
class JwtVerifier:
    """Verifies bearer tokens against one public key (§9.2)."""

    key: Any
    algorithms: tuple[str, ...]
    issuer: str = ""
    audience: str = ""
    leeway_seconds: float = DEFAULT_LEEWAY_SECONDS

    @classmethod
    def from_settings(
        cls,
        public_key: str,
        *,
        issuer: str = "",
        audience: str = "",
        leeway_ms: int = DEFAULT_LEEWAY_SECONDS * 1000,
    ) -> JwtVerifier:
        key, algorithms = load_public_key(public_key)
        leeway = min(max(leeway_ms, 0) / 1000, MAX_LEEWAY_SECONDS)
        return cls(key, algorithms, issuer, audience, leeway)

    def __repr__(self) -> str:  # never the key
        return f"JwtVerifier(algorithms={self.algorithms!r})"

    def verify(self, token: str) -> Principal:
        required = ["exp"]
        if self.issuer:
            required.append("iss")
        if self.audience:
            required.append("aud")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self.algorithms:
                raise unauthorized("the token's algorithm does not fit the configured key")
            claims = jwt.decode(
                token,
                self.key,
                algorithms=list(self.algorithms),
                issuer=self.issuer or None,
                audience=self.audience or None,
                leeway=self.leeway_seconds,
                options={"require": required, "verify_aud": bool(self.audience)},
            )
        except jwt.MissingRequiredClaimError as error:
            raise unauthorized(f"the token lacks the {error.claim!r} claim") from None
        except jwt.PyJWTError as error:
            for kind, message in _TOKEN_ERRORS:
                if isinstance(error, kind):
                    raise unauthorized(message) from None
            raise unauthorized("malformed token") from None
        except (ValueError, TypeError):
            raise unauthorized("malformed token") from None
        return principal_of_claims(claims)


# ---- the authenticator of a listener ----------------------------------------------------------


@dataclass(frozen=True)
class Authenticator:
    """The credentials one listener accepts: Basic users, a JWT verifier, both, or none (then
    every request acts for :data:`EVERYTHING`)."""

    basic: Mapping[str, str]
    jwt: JwtVerifier | None = None

    def __repr__(self) -> str:  # never the passwords
        return f"Authenticator(basic_users={len(self.basic)}, jwt={self.jwt is not None})"

    @property
    def enabled(self) -> bool:
        return bool(self.basic) or self.jwt is not None

    @property
    def challenge(self) -> dict[str, str]:
        if self.basic and self.jwt is not None:
            return BOTH_CHALLENGES
        return BEARER_CHALLENGE if self.jwt is not None else BASIC_CHALLENGE

    def authenticate(self, header: str | None, token: Any = None) -> Principal:
        """The principal of a request with this ``Authorization`` header, or of ``token`` (the
        2026 envelope's ``head.auth``) when it is a non-empty string and JWT is configured."""
        if not self.enabled:
            return EVERYTHING
        if self.jwt is not None and isinstance(token, str) and token:
            return self.jwt.verify(token)
        if not header:
            raise unauthorized("credentials are required")
        scheme, _, credentials = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.jwt is not None:
            return self.jwt.verify(credentials.strip())
        if scheme == "basic" and self.basic:
            check_basic(header.strip(), self.basic)
            return EVERYTHING
        if self.jwt is None:
            raise unauthorized("Basic credentials are required")
        if not self.basic:
            raise unauthorized("Bearer credentials are required")
        raise unauthorized("Basic or Bearer credentials are required")


NO_AUTH = Authenticator({})


def build_verifier(config: Any) -> JwtVerifier | None:
    """The JWT verifier of a server configuration, None when ``api.auth.publicKey`` is empty;
    :class:`KeyLoadError` when the key cannot be used."""
    public_key = str(config["api.auth.publicKey"] or "")
    if not public_key.strip():
        return None
    return JwtVerifier.from_settings(
        public_key.strip(),
        issuer=str(config["api.auth.issuer"] or ""),
        audience=str(config["api.auth.audience"] or ""),
        leeway_ms=int(config["api.auth.leeway"]),
    )
