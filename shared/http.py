"""HTTP entrypoint pieces every service shares: problem responses, authentication, health."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.auth import AuthError, AuthSettings, Principal, verify
from shared.errors import ConcurrencyError
from shared.logging import RequestContextMiddleware, get_logger

log = get_logger(__name__)


class Problem(Exception):
    """An error a user can hit: answered as application/problem+json, never a stack trace."""

    status = 422
    code = "rule_violated"

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if code is not None:
            self.code = code


class RuleViolation(Problem):
    """A workflow rule forbids the command (422); `code` names the rule."""


class NotFound(Problem):
    status = 404
    code = "not_found"


class Forbidden(Problem):
    status = 403
    code = "forbidden"


class Unauthorized(Problem):
    status = 401
    code = "unauthorized"


class Conflict(Problem):
    status = 409
    code = "conflict"


def problem_response(
    status: int, code: str, detail: str, field: str | None = None, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:zhengming:problem:{code}",
        "title": code,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        log.info("request.rejected", code=exc.code, field=exc.field, status=exc.status)
        return problem_response(exc.status, exc.code, exc.detail, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": None, "message": "invalid request"}
        log.info("request.invalid", fields=[e["field"] for e in errors])
        return problem_response(
            422, "invalid_input", f"{first['field']}: {first['message']}", first["field"], errors
        )

    @app.exception_handler(ConcurrencyError)
    async def _conflict(_: Request, exc: ConcurrencyError) -> JSONResponse:
        return problem_response(409, exc.code, "the case changed meanwhile; reload and try again")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("request.failed", error=type(exc).__name__)
        return problem_response(500, "internal_error", "internal error; see the service log")


_bearer = HTTPBearer(auto_error=False)


def current_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("a bearer token is required")
    try:
        principal = verify(credentials.credentials, AuthSettings())
    except AuthError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc
    structlog.contextvars.bind_contextvars(user_id=principal.user_id, role=principal.role)
    return principal


def require(*roles: str) -> Callable[[Principal], Principal]:
    """Dependency: the caller must hold one of `roles`."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise Forbidden(
                f"role {principal.role} may not do this; needs one of {', '.join(roles)}",
                code="role_forbidden",
            )
        return principal

    return check


def check_jurisdiction(principal: Principal, jurisdiction: str, *, field: str = "jurisdiction") -> None:
    """Commands naming another jurisdiction are refused (403)."""
    if not principal.sees(jurisdiction):
        raise Forbidden(
            f"no access to jurisdiction {jurisdiction}", field=field, code="jurisdiction_forbidden"
        )


@dataclass(frozen=True)
class CommandContext:
    """Who issues a command and which conversation it belongs to."""

    principal: Principal
    correlation_id: uuid.UUID


def command_context(principal: Principal, request: Request) -> CommandContext:
    bound = structlog.contextvars.get_contextvars().get("correlation_id")
    try:
        correlation = uuid.UUID(str(bound or request.headers.get("x-correlation-id")))
    except ValueError:
        correlation = uuid.uuid4()
    return CommandContext(principal, correlation)


def create_app(service: str, *, title: str, description: str, version: str = "1.0.0") -> FastAPI:
    """A FastAPI app with problem handlers and request logging context; health routes are
    added by the runtime that knows the database and broker."""
    app = FastAPI(title=title, description=description, version=version)
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.state.service = service
    return app
