"""API tokens (docs/api-behaviour.md, Tokens and tenancy): HS256 with WF_JWT_SECRET, or RS256/ES256 from a JWKS URL."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import jwt
import jwt.types

from shared.config import Settings

DEPARTMENT_ADMIN = "DepartmentAdmin"
SYSTEM_ADMIN = "SystemAdmin"


MAX_ID = 2**31 - 1


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    department_id: int
    roles: frozenset[str]


def issue_token(
    settings: Settings, *, department_id: int, roles: list[str], user_id: str = "wf-cli", ttl_s: int = 3600
) -> str:
    if settings.jwt_secret is None:
        raise RuntimeError("WF_JWT_SECRET is not configured; tokens for JWKS deployments come from your IdP")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "department_id": department_id,
        "roles": roles,
        "iat": now,
        "exp": now + ttl_s,
    }
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    valid_from: int  # PyJWT refuses the token while the clock is before iat / nbf
    expires: int  # and from exp on


class TokenVerifier:
    """Checks API tokens, remembering the outcome of each successful check per token string.

    Everything PyJWT checks except the time claims depends only on the token and this process's
    keys (the secret, or JWKS keys that ``cache_keys`` keeps for the process's life anyway), so a
    bounded LRU of verified tokens skips the signature check and claim parsing on a client's next
    request; iat, nbf and exp are compared with the clock at every use as PyJWT compares them, and
    a token outside that window is checked afresh (and refused with PyJWT's reason). Failures are
    never cached. The same token gets the same answer on every replica.
    """

    def __init__(self, settings: Settings, *, cache_size: int = 4096) -> None:
        self._settings = settings
        self._jwks = (
            jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True) if settings.jwt_jwks_url else None
        )
        self._verified = functools.lru_cache(maxsize=cache_size)(self._check)

    def verify(self, token: str) -> Principal:
        verified = self._verified(token)
        if verified.valid_from <= time.time() < verified.expires:
            return verified.principal
        return self._check(token).principal

    def _check(self, token: str) -> _Verified:
        options: jwt.types.Options = {"require": ["exp", "sub"]}
        try:
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=["RS256", "ES256"],
                    options=options,
                    audience=self._settings.jwt_audience,
                    issuer=self._settings.jwt_issuer,
                )
            else:
                assert self._settings.jwt_secret is not None
                claims = jwt.decode(
                    token,
                    self._settings.jwt_secret.get_secret_value(),
                    algorithms=["HS256"],
                    options=options,
                    audience=self._settings.jwt_audience,
                    issuer=self._settings.jwt_issuer,
                )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token has expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("token is invalid") from exc
        department = claims.get("department_id")
        roles = claims.get("roles", [])
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
        if isinstance(department, str) and department.isascii() and department.isdigit():
            department = int(department)
        if (
            not isinstance(department, int)
            or isinstance(department, bool)
            or not 0 < department <= MAX_ID  # department ids are 32-bit in the database
        ):
            raise InvalidToken("token has no valid department_id claim")
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidToken("token roles claim must be a list of strings")
        principal = Principal(user_id=str(claims["sub"]), department_id=department, roles=frozenset(roles))
        # PyJWT has checked that these claims are integers (int() of them) and within the window now.
        not_before = [int(claims[name]) for name in ("iat", "nbf") if name in claims]
        return _Verified(principal, valid_from=max(not_before, default=0), expires=int(claims["exp"]))
