"""Login and key publication on every service: `POST /auth/login` checks a user of the directory
and issues the bearer token; `GET /.well-known/jwks.json` publishes the key that verifies it."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import asyncpg
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from shared import settings as config
from shared.auth import Principal, jwks, mint
from shared.db import acquired
from shared.directory import MAX_PASSWORD, Directory, UserId
from shared.errors import Forbidden
from shared.events.common import Role
from shared.http import Unauthorized, unavailable_response
from shared.logging import get_logger

log = get_logger(__name__)

JWKS_PATH = "/.well-known/jwks.json"


class Login(BaseModel):
    """登录: user id and password; `role` picks one of several roles the user holds (default:
    the first)."""

    model_config = ConfigDict(extra="forbid")

    user_id: UserId
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)
    role: Role | None = None


class IssuedToken(BaseModel):
    """The bearer token of a logged-in user and what it says."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="seconds")
    user_id: str
    name: str
    role: Role
    roles: list[Role]
    unit: str
    jurisdictions: list[str]


def _failed() -> Unauthorized:
    # One answer for a wrong password, an unknown and a disabled user: no hint which.
    return Unauthorized(
        "the user id and password do not match an enabled user (or the user is locked for a while"
        " after repeated failed logins)",
        detail_zh="用户名或密码不正确，或该用户已停用、因多次登录失败暂时锁定",
        code="login_failed",
        headers={"WWW-Authenticate": 'Bearer realm="zhengming"'},
    )


def add_auth_routes(app: FastAPI, pool: asyncpg.Pool, directory: Directory | None = None) -> None:
    """Login and JWKS routes, when this process issues tokens (`ZM_AUTH_ISSUE_TOKENS`)."""
    settings = config.auth()
    if not settings.issue_tokens:
        return
    users = directory or Directory.configured()
    ttl = timedelta(hours=settings.token_ttl_hours)

    @app.post(
        "/auth/login",
        tags=["auth"],
        summary="Log in: a user of the directory gets a bearer token (登录)",
        response_model=IssuedToken,
        responses={401: {"description": "wrong user id or password, or a disabled user"}},
    )
    async def login(body: Login, response: Response) -> IssuedToken | JSONResponse:
        response.headers["Cache-Control"] = "no-store"  # a bearer token is kept by nobody in between
        if not settings.private_key.exists():
            return unavailable_response("token signing key")
        async with acquired(pool) as conn:
            officer = await users.authenticate(conn, body.user_id, body.password)
        if officer is None:
            log.info("auth.login_failed", user_id=body.user_id)
            raise _failed()
        role = body.role or officer.roles[0]
        if role not in officer.roles:
            raise Forbidden(
                f"user {officer.user_id} does not hold the role {role}",
                detail_zh=f"用户 {officer.user_id} 没有 {role} 角色",
                field="body.role",
                code="role_forbidden",
            )
        principal = Principal(
            user_id=officer.user_id,
            name=officer.name,
            role=role,
            unit=officer.unit,
            jurisdictions=officer.jurisdictions,
        )
        log.info("auth.login", user_id=officer.user_id, role=role)
        return IssuedToken(
            access_token=mint(principal, settings, ttl=ttl),
            expires_in=int(ttl.total_seconds()),
            user_id=officer.user_id,
            name=officer.name,
            role=role,
            roles=officer.roles,
            unit=officer.unit,
            jurisdictions=officer.jurisdictions,
        )

    @app.get(JWKS_PATH, tags=["auth"], summary="The public key that verifies this deployment's tokens")
    async def published_keys() -> JSONResponse:
        try:
            keys = jwks(settings)
        except FileNotFoundError:
            return unavailable_response("token signing key")
        return JSONResponse(keys, headers={"Cache-Control": f"public, max-age={int(settings.jwks_cache_s)}"})
