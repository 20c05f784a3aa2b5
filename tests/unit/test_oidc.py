"""OIDC bearer tokens against a local issuer the test starts: real RS256 keys, a discovery
document and a JWKS served on loopback, tokens signed with PyJWT."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.auth import BearerAuthMiddleware
from gateway.errors import AuthError, ConfigError
from gateway.identity import PRINCIPAL_SCOPE_KEY
from gateway.oidc import OidcVerifier
from gateway.settings import Settings

AUDIENCE = "policy-gateway"


class Issuer:
    """A minimal OpenID provider: discovery, JWKS, and token minting with its current key."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {"k1": rsa.generate_private_key(65537, 2048)}
        self.published = ["k1"]
        self.jwks_requests = 0
        self.url = ""

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.published:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
            keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": keys}

    def rotate(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(65537, 2048)
        self.published = [kid]

    def token(self, kid: str = "k1", key: Any = None, alg: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "sub": "alice@example.com", "groups": ["sre"],
                "iat": now, "exp": now + 300} | claims  # fmt: skip
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.keys[kid], algorithm=alg, headers={"kid": kid})


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    provider = Issuer()

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response({"issuer": provider.url, "jwks_uri": f"{provider.url}/jwks"})

    async def jwks(request: web.Request) -> web.Response:
        provider.jwks_requests += 1
        return web.json_response(provider.jwks())

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/jwks", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    provider.url = f"http://127.0.0.1:{port}"
    yield provider
    await runner.cleanup()


@pytest.fixture
async def verifier(issuer: Issuer) -> AsyncIterator[OidcVerifier]:
    settings = Settings(oidc_issuer=issuer.url, oidc_audience=AUDIENCE, oidc_min_refresh_seconds=30)
    checker = OidcVerifier(settings)
    yield checker
    await checker.aclose()


async def test_a_valid_token_names_the_principal_from_its_claims(
    issuer: Issuer, verifier: OidcVerifier
) -> None:
    principal = await verifier.authenticate(issuer.token())
    assert (principal.subject, principal.groups, principal.transport) == (
        "alice@example.com",
        ("sre",),
        "http",
    )
    assert principal.authenticated


async def test_subject_and_groups_come_from_configurable_claims(issuer: Issuer) -> None:
    settings = Settings(
        oidc_issuer=issuer.url,
        oidc_audience=AUDIENCE,
        oidc_subject_claim="email",
        oidc_groups_claim="realm_access.roles",
    )
    checker = OidcVerifier(settings)
    try:
        token = issuer.token(email="bob@example.com", realm_access={"roles": ["platform-admins"]})
        principal = await checker.authenticate(token)
    finally:
        await checker.aclose()
    assert (principal.subject, principal.groups) == ("bob@example.com", ("platform-admins",))


@pytest.mark.parametrize(
    ("claims", "says"),
    [
        ({"exp": int(time.time()) - 3600}, "has expired"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"aud": "another-service"}, "another audience, not 'policy-gateway'"),
        ({"iss": "https://evil.example.com"}, "another issuer"),
        ({"exp": None}, "lacks the 'exp' claim"),
        ({"sub": None}, "no usable 'sub' claim"),
    ],
)
async def test_a_token_that_fails_a_claim_check_is_refused_naming_it(
    issuer: Issuer, verifier: OidcVerifier, claims: dict[str, Any], says: str
) -> None:
    with pytest.raises(AuthError, match=says):
        await verifier.authenticate(issuer.token(**claims))


async def test_a_token_signed_with_another_key_is_refused(issuer: Issuer, verifier: OidcVerifier) -> None:
    stranger = rsa.generate_private_key(65537, 2048)
    with pytest.raises(AuthError, match="signature does not verify with the issuer's key 'k1'"):
        await verifier.authenticate(issuer.token(key=stranger))


def _unsigned(issuer: Issuer) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "mallory", "exp": int(time.time()) + 300}
    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{part(claims)}."


async def test_alg_none_is_refused(issuer: Issuer, verifier: OidcVerifier) -> None:
    with pytest.raises(AuthError, match="algorithm 'none' is not accepted"):
        await verifier.authenticate(_unsigned(issuer))


async def test_an_hmac_token_keyed_with_the_public_key_is_refused(
    issuer: Issuer, verifier: OidcVerifier
) -> None:
    public_pem = issuer.keys["k1"].public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    body = {"iss": issuer.url, "aud": AUDIENCE, "sub": "mallory", "exp": int(time.time()) + 300}
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"k1","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    import hashlib
    import hmac

    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(AuthError, match="algorithm 'HS256' is not accepted"):
        await verifier.authenticate(forged)


def test_hmac_or_none_cannot_be_configured(issuer: Issuer) -> None:
    with pytest.raises(ConfigError, match="asymmetric only"):
        OidcVerifier(
            Settings(oidc_issuer=issuer.url, oidc_audience=AUDIENCE, oidc_algorithms=("RS256", "HS256"))
        )


def test_an_issuer_that_is_not_https_is_refused_unless_on_loopback() -> None:
    with pytest.raises(ConfigError, match="https"):
        OidcVerifier(Settings(oidc_issuer="http://idp.example.com", oidc_audience=AUDIENCE))


async def test_a_rotated_key_is_fetched_once_and_unknown_kids_are_rate_limited(
    issuer: Issuer, verifier: OidcVerifier
) -> None:
    await verifier.authenticate(issuer.token())
    assert issuer.jwks_requests == 1
    issuer.rotate("k2")
    principal = await verifier.authenticate(issuer.token(kid="k2"))  # unknown kid: one refetch
    assert principal.subject == "alice@example.com"
    assert issuer.jwks_requests == 2
    for n in range(20):  # made-up kids: no fetch storm within the refresh interval
        with pytest.raises(AuthError, match="does not publish"):
            await verifier.authenticate(issuer.token(kid=f"bogus-{n}", key=issuer.keys["k2"]))
    assert issuer.jwks_requests == 2
    with pytest.raises(AuthError, match="does not publish"):  # the old key is gone after rotation
        await verifier.authenticate(issuer.token(kid="k1"))


async def test_the_middleware_answers_401_naming_the_problem_and_passes_valid_callers(issuer: Issuer) -> None:
    settings = Settings(oidc_issuer=issuer.url, oidc_audience=AUDIENCE)
    checker = OidcVerifier(settings)
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope[PRINCIPAL_SCOPE_KEY])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guarded = BearerAuthMiddleware(app, tokens=None, anonymous="reject", oidc=checker)
    transport = httpx.ASGITransport(app=guarded)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            ok = await http.get("/x", headers={"Authorization": f"Bearer {issuer.token()}"})
            wrong = await http.get("/x", headers={"Authorization": f"Bearer {issuer.token(aud='other')}"})
    finally:
        await checker.aclose()
    assert ok.status_code == 200
    assert seen[0].subject == "alice@example.com"
    assert wrong.status_code == 401
    assert (
        wrong.json()["message"]
        == "the bearer token is not valid: the token is for another audience, not 'policy-gateway'"
    )
