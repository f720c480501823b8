"""Tenancy and authentication for every endpoint (Grafana Cloud / Mimir conventions).

Off by default: every request is tenant `anonymous` with every scope. With `auth.enabled`, a credential is
required (`Basic base64(user:token)`, `Bearer user:token` or `Bearer token`) and names an access policy with
scopes `metrics:read`, `metrics:write`, `admin`. With `tenancy.enabled`, the tenant is the policy's, or (when
`org_id_header` allows it) the `X-Scope-OrgID` header of a caller whose credential names no tenant; reads may
name several tenants as `a|b`. Tokens are compared in constant time and never logged.
"""
from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass

import orjson

READ, WRITE, ADMIN = "metrics:read", "metrics:write", "admin"
ANONYMOUS = "anonymous"
ALL_SCOPES = frozenset({READ, WRITE, ADMIN})

_WRITE_POSTS = ("/metrics", "/graphite/metrics", "/api/v1/push", "/api/v1/write", "/api/v1/prom/remote/write",
                "/api/v1/prom/write", "/tags/tagSeries", "/tags/tagMultiSeries", "/tags/delSeries",
                "/metrics/delete", "/events", "/graphite/tags/tagSeries", "/graphite/tags/tagMultiSeries",
                "/graphite/tags/delSeries", "/graphite/metrics/delete", "/graphite/events")
_ADMIN_PREFIXES = ("/compactor/",)
_OPEN = {("GET", "/ready"), ("GET", "/metrics"), ("HEAD", "/ready")}


class AuthError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Policy:
    name: str
    user: str | None
    token: str
    tenant: str | None
    scopes: frozenset


@dataclass(frozen=True)
class Identity:
    tenants: tuple[str, ...]
    scopes: frozenset
    policy: str | None = None

    @property
    def tenant(self) -> str:
        return "|".join(self.tenants)


def required_scope(method: str, path: str) -> str | None:
    if (method, path.rstrip("/") or "/") in _OPEN:
        return None
    if any(path.startswith(p) for p in _ADMIN_PREFIXES):
        return ADMIN
    if method == "POST" and (path.rstrip("/") in _WRITE_POSTS or "/config/storage" in path
                             or path.startswith(("/api/v1/rules", "/prometheus/config/v1/rules",
                                                 "/config/v1/rules"))):
        return WRITE
    if method == "DELETE":
        return WRITE
    return READ


class Authenticator:
    def __init__(self, settings: dict):
        tenancy = settings.get("tenancy") or {}
        auth = settings.get("auth") or {}
        self.tenancy = bool(tenancy.get("enabled"))
        self.org_id_header = bool(tenancy.get("org_id_header", True))
        self.auth = bool(auth.get("enabled"))
        self.policies = []
        for i, p in enumerate(auth.get("policies") or []):
            if not p.get("token"):
                raise ValueError(f"auth.policies[{i}] needs a token")
            scopes = frozenset(p.get("scopes") or [])
            bad = scopes - ALL_SCOPES
            if bad:
                raise ValueError(f"auth.policies[{i}]: unknown scopes {sorted(bad)}; use {sorted(ALL_SCOPES)}")
            self.policies.append(Policy(p.get("name") or f"policy-{i}", str(p["user"]) if p.get("user") else None,
                                        str(p["token"]), p.get("tenant"), scopes))
        if self.auth and not self.policies:
            raise ValueError("auth.enabled needs at least one entry in auth.policies")

    def _match(self, user: str | None, token: str) -> Policy | None:
        found = None
        for p in self.policies:   # check every policy: timing does not depend on which one matches
            token_ok = hmac.compare_digest(p.token.encode(), token.encode())
            user_ok = user is None or (p.user is not None and hmac.compare_digest(p.user.encode(), user.encode()))
            if token_ok and user_ok and found is None:
                found = p
        return found

    def _credential(self, header: str | None) -> tuple[str | None, str] | None:
        if not header:
            return None
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except Exception:
                raise AuthError(401, "malformed Basic credentials") from None
            user, sep, token = decoded.partition(":")
            if not sep:
                raise AuthError(401, "malformed Basic credentials")
            return user, token
        if scheme.lower() == "bearer":
            user, sep, token = value.partition(":")
            return (user, token) if sep else (None, value)
        raise AuthError(401, f"unsupported authorization scheme {scheme!r}")

    def identify(self, method: str, path: str, headers) -> Identity | None:
        """The caller's identity, or None for open endpoints. Raises AuthError (401/403)."""
        scope = required_scope(method, path)
        if scope is None:
            return None
        org = headers.get("x-scope-orgid")
        if not self.auth:
            if not self.tenancy:
                return Identity((ANONYMOUS,), ALL_SCOPES)
            if not org or not self.org_id_header:
                raise AuthError(401, "no org id")
            return Identity(self._tenants(org, scope), ALL_SCOPES)
        cred = self._credential(headers.get("authorization"))
        if cred is None:
            raise AuthError(401, "authentication required")
        policy = self._match(*cred)
        if policy is None:
            raise AuthError(401, "invalid credentials")
        scopes = policy.scopes | ({READ, WRITE} if ADMIN in policy.scopes else set())
        if scope not in scopes:
            raise AuthError(403, f"the access policy does not have the {scope} scope")
        if not self.tenancy:
            return Identity((ANONYMOUS,), frozenset(scopes), policy.name)
        if policy.tenant:
            return Identity((policy.tenant,), frozenset(scopes), policy.name)
        if org and self.org_id_header:
            return Identity(self._tenants(org, scope), frozenset(scopes), policy.name)
        raise AuthError(401, "no org id")

    @staticmethod
    def _tenants(org: str, scope: str) -> tuple[str, ...]:
        tenants = tuple(t.strip() for t in org.split("|") if t.strip())
        if not tenants:
            raise AuthError(401, "no org id")
        if len(tenants) > 1 and scope != READ:
            raise AuthError(400, "a write names exactly one tenant; several (a|b) are only allowed for reads")
        for t in tenants:
            if len(t) > 150 or t in (".", "..") or any(c in t for c in "/\\"):
                raise AuthError(400, f"invalid tenant id {t[:50]!r}")
        return tenants


def error_body(path: str, status: int, message: str) -> tuple[bytes, str]:
    """The error in the format of the API the request came to."""
    if path.startswith(("/api/v1", "/prometheus/")):
        kind = {401: "unauthorized", 403: "forbidden"}.get(status, "bad_data")
        return orjson.dumps({"status": "error", "errorType": kind, "error": message}), "application/json"
    if path.rstrip("/") in ("/metrics", "/graphite/metrics") or path.startswith(("/tags", "/graphite/tags")):
        return orjson.dumps(message), "application/json"
    return (message + "\n").encode(), "text/plain; charset=utf-8"


class AuthMiddleware:
    """Pure ASGI middleware (keeps request bodies streaming): sets scope["state"]["tenant"/"identity"]."""

    def __init__(self, app, authenticator: Authenticator):
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        try:
            identity = self.authenticator.identify(scope["method"], scope["path"], headers)
        except AuthError as exc:
            body, ctype = error_body(scope["path"], exc.status, exc.message)
            extra = [(b"www-authenticate", b'Basic realm="plumbago"')] if exc.status == 401 else []
            await send({"type": "http.response.start", "status": exc.status,
                        "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode()),
                                    *extra]})
            await send({"type": "http.response.body", "body": body})
            return
        state = scope.setdefault("state", {})
        state["identity"] = identity
        state["tenant"] = identity.tenant if identity else ANONYMOUS
        await self.app(scope, receive, send)
