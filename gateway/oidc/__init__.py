"""OIDC / JWT bearer tokens: callers whose identity an OpenID Connect issuer vouches for.

``OidcVerifier.authenticate(token)`` checks, with PyJWT, a JWT against the issuer's
published keys (``gateway.oidc.client``): the signature with an algorithm from the
configured list only (``none`` and the HMAC family are never accepted, and the key's type
must fit the algorithm, so a public key cannot be used as an HMAC secret), ``iss``, ``aud``,
``exp`` (required) and ``nbf`` with a small leeway. The principal's subject and groups come
from configurable claims (dotted paths reach nested claims, e.g. ``realm_access.roles``).
Every refusal is an ``AuthError`` whose message names what is wrong.
"""

from __future__ import annotations

from typing import Any, Final

import jwt

from gateway.contracts import Principal
from gateway.errors import AuthError, ConfigError
from gateway.oidc.client import JwksClient
from gateway.settings import Settings

__all__ = ["OidcVerifier", "looks_like_jwt"]

_KEY_TYPES: Final[dict[str, str]] = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_NEVER: Final[frozenset[str]] = frozenset({"none", "HS256", "HS384", "HS512"})


def looks_like_jwt(token: str) -> bool:
    """A compact JWS: three base64url parts, the first a JSON object (``eyJ``)."""
    return token.startswith("eyJ") and token.count(".") == 2


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class OidcVerifier:
    """JWTs from ``Settings.oidc_issuer`` for ``Settings.oidc_audience``."""

    def __init__(self, settings: Settings) -> None:
        if not settings.oidc_issuer or not settings.oidc_audience:
            raise ConfigError("OIDC needs both GATEWAY_OIDC_ISSUER and GATEWAY_OIDC_AUDIENCE")
        refused = _NEVER.intersection(settings.oidc_algorithms)
        if refused:
            raise ConfigError(f"GATEWAY_OIDC_ALGORITHMS may not include {sorted(refused)}: asymmetric only")
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.audience = settings.oidc_audience
        self.algorithms = tuple(settings.oidc_algorithms)
        self.subject_claim = settings.oidc_subject_claim
        self.groups_claim = settings.oidc_groups_claim
        self.leeway = settings.oidc_leeway_seconds
        self.keys = JwksClient(
            self.issuer,
            timeout_seconds=settings.oidc_timeout_seconds,
            cache_seconds=settings.oidc_jwks_cache_seconds,
            min_refresh_seconds=settings.oidc_min_refresh_seconds,
        )

    async def aclose(self) -> None:
        await self.keys.aclose()

    async def authenticate(self, token: str) -> Principal:
        """The principal the token vouches for. Raises ``AuthError`` naming the problem."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise AuthError("the bearer token is not a well-formed JWT") from exc
        alg = str(header.get("alg"))
        if alg not in self.algorithms:
            raise AuthError(
                f"the token's algorithm {alg!r} is not accepted (allowed: {', '.join(self.algorithms)})"
            )
        jwk = await self.keys.key(header.get("kid") if isinstance(header.get("kid"), str) else None)
        if jwk.get("kty") != _KEY_TYPES.get(alg[:2]) or jwk.get("alg", alg) != alg:
            raise AuthError(f"the issuer's key {jwk.get('kid')!r} is not a key for {alg}")
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError("the token is not valid yet (nbf or iat in the future)") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError(f"the token is for another audience, not {self.audience!r}") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError(f"the token was issued by another issuer, not {self.issuer!r}") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"the token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError(
                f"the token's signature does not verify with the issuer's key {jwk.get('kid')!r}"
            ) from exc
        except (jwt.InvalidTokenError, jwt.PyJWKError) as exc:
            raise AuthError(f"the token is not acceptable ({type(exc).__name__})") from exc
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        subject = _claim(claims, self.subject_claim)
        if not isinstance(subject, str) or not subject or len(subject) > 256:
            raise AuthError(f"the token has no usable {self.subject_claim!r} claim for the subject")
        raw = _claim(claims, self.groups_claim)
        groups = (raw,) if isinstance(raw, str) else raw if isinstance(raw, list) else []
        return Principal(
            subject=subject,
            groups=tuple(g for g in groups if isinstance(g, str) and g),
            transport="http",
            authenticated=True,
        )
