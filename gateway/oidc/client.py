"""The issuer's keys: its OIDC discovery document and JWKS, fetched with httpx and cached.

The JWKS is refetched when it is older than ``cache_seconds``, or at once when a token
names a key id it does not hold (the issuer rotated its keys); such forced refetches happen
at most once every ``min_refresh_seconds``, so a flood of tokens with made-up key ids costs
one fetch, not one per token. If a refetch fails, the keys already held stay in use and the failure is
logged; with no keys at all, every token is refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from gateway.errors import AuthError, ConfigError

__all__ = ["JwksClient", "require_https"]

log = logging.getLogger(__name__)

_MAX_DOCUMENT_BYTES: Final[int] = 512 * 1024


def require_https(url: str, what: str) -> None:
    """``url`` must be https, or http on a loopback address (tests, a local issuer)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and loopback:
        return
    raise ConfigError(f"{what} must be an https:// URL (http:// only on loopback), not {url!r}")


class JwksClient:
    """The signing keys of one issuer, as JWK dicts by key id."""

    def __init__(
        self,
        issuer: str,
        *,
        timeout_seconds: float,
        cache_seconds: float,
        min_refresh_seconds: float,
    ) -> None:
        require_https(issuer, "GATEWAY_OIDC_ISSUER")
        self.issuer = issuer.rstrip("/")
        self._cache_seconds = cache_seconds
        self._min_refresh = min_refresh_seconds
        self._http = httpx.AsyncClient(timeout=timeout_seconds, trust_env=False, follow_redirects=False)
        self._lock = asyncio.Lock()
        self._jwks_uri: str | None = None
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at = float("-inf")
        self._tried_at = float("-inf")
        self._forced_at = float("-inf")  # the last refetch an unknown key id caused
        self.fetches = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    async def key(self, kid: str | None) -> dict[str, Any]:
        """The JWK for ``kid`` (a token without ``kid``: the issuer's only key). Raises
        ``AuthError`` when the issuer has no such key, even after a refetch."""
        now = time.monotonic()
        if now - self._fetched_at > self._cache_seconds:
            await self._refresh(now)
        elif kid is not None and kid not in self._keys and now - self._forced_at >= self._min_refresh:
            self._forced_at = now
            await self._refresh(now)
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        found = self._keys.get(kid or "")
        if found is None:
            if not self._keys:
                raise AuthError("the issuer's signing keys could not be fetched; try again later")
            raise AuthError(f"the token was signed with a key the issuer does not publish (kid {kid!r})")
        return found

    async def _refresh(self, now: float) -> None:
        async with self._lock:
            if self._tried_at >= now:  # another request refreshed while we waited
                return
            self._tried_at = time.monotonic()
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning("could not refresh the JWKS of %s (%s); keeping %d key(s)", self.issuer,
                            type(exc).__name__, len(self._keys))  # fmt: skip
                return
            self._keys, self._fetched_at = keys, time.monotonic()
            self.fetches += 1

    async def _json(self, url: str) -> Any:
        resp = await self._http.get(url, headers={"Accept": "application/json"})
        resp.raise_for_status()
        if len(resp.content) > _MAX_DOCUMENT_BYTES:
            raise ValueError("document too large")
        return resp.json()

    async def _fetch(self) -> dict[str, dict[str, Any]]:
        if self._jwks_uri is None:
            discovery = await self._json(f"{self.issuer}/.well-known/openid-configuration")
            if str(discovery["issuer"]).rstrip("/") != self.issuer:
                raise ValueError("the discovery document names another issuer")
            jwks_uri = str(discovery["jwks_uri"])
            require_https(jwks_uri, "the issuer's jwks_uri")
            self._jwks_uri = jwks_uri
        document = await self._json(self._jwks_uri)
        keys: dict[str, dict[str, Any]] = {}
        for jwk in document["keys"]:
            # Symmetric keys never verify a bearer token here (no HS*/RS* confusion).
            if (
                isinstance(jwk, dict)
                and jwk.get("kty") in ("RSA", "EC", "OKP")
                and jwk.get("use", "sig") == "sig"
            ):
                keys[str(jwk.get("kid", ""))] = jwk
        return keys
