"""HTTP entrypoint pieces every service shares: problem responses (for the framework's own errors
too), authentication before the body is read, health."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
import structlog
from fastapi import Depends, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import HTTPException as FastAPIHTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.auth import AuthError, AuthSettings, KeysUnavailable, Principal, verify_async
from shared.db import DATABASE_AWAY, database_away
from shared.errors import (
    ConcurrencyError,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    OutOfRange,
    RuleViolation,
)
from shared.logging import ASGIApp, RequestContextMiddleware, get_logger, outages

log = get_logger(__name__)

MAX_BODY_BYTES = 1024 * 1024
"""The largest request body (the biggest command, a report with 100 allegations, is far smaller)."""

RETRY_AFTER_S = 5
"""What a 503 asks the caller to wait before trying again."""


class Unauthorized(Exception):
    """The HTTP edge's own refusal: no valid bearer token (401 problem+json)."""

    status = 401
    code = "unauthorized"

    def __init__(
        self, detail: str, *, headers: dict[str, str] | None = None, code: str | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {"WWW-Authenticate": "Bearer"}
        if code is not None:
            self.code = code


STATUS_OF: dict[type[DomainError], int] = {RuleViolation: 422, NotFound: 404, Forbidden: 403, Conflict: 409}
"""The HTTP status that answers each kind of domain error."""


def status_of(error: DomainError) -> int:
    return next((status for kind, status in STATUS_OF.items() if isinstance(error, kind)), 422)


# Chinese wording of each problem code; a code without one falls back to its status's wording.
_ZH_BY_CODE = {
    "invalid_input": "请求内容无效",
    "malformed_body": "请求体无法解析（须为 UTF-8 编码的 JSON）",
    "not_found": "未找到所请求的资源",
    "route_not_found": "没有这个地址",
    "method_not_allowed": "该地址不支持此请求方法",
    "payload_too_large": "请求体过大",
    "unauthorized": "需要有效的登录令牌",
    "login_failed": "用户名或密码不正确，或该用户已停用",
    "forbidden": "无权进行此操作",
    "role_forbidden": "当前角色无权进行此操作",
    "jurisdiction_forbidden": "无权访问该辖区",
    "concurrency_conflict": "案件已被他人修改，请刷新后重试",
    "out_of_range": "数值超出可处理的范围",
    "service_unavailable": "服务暂时不可用，请稍后重试",
    "internal_error": "内部错误，请查看服务日志",
}
_ZH_BY_STATUS = {
    400: "请求有误",
    401: "需要有效的登录令牌",
    403: "无权进行此操作",
    404: "未找到所请求的资源",
    409: "与当前状态冲突",
    422: "请求违反业务规则",
    503: "服务暂时不可用，请稍后重试",
}
# Chinese wording of the validation errors a caller meets most; others get the generic one.
_ZH_BY_ERROR = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_too_short": "文本过短",
    "string_too_long": "文本过长",
    "too_short": "条目过少",
    "too_long": "条目过多",
    "string_pattern_mismatch": "格式不符",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "date_type": "日期格式应为 YYYY-MM-DD",
    "date_out_of_range": "日期须在 {earliest} 至 {latest} 之间",
    "text_control_character": "文本不得包含控制字符（换行和制表符除外）",
    "quarter_format": "季度格式应为 2023Q1",
    "quarter_out_of_range": "季度的年份须在 {earliest} 至 {latest} 之间",
    "int_parsing": "应为整数",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "bool_parsing": "应为布尔值",
    "json_invalid": "请求体不是有效的 JSON",
    "model_attributes_type": "应为 JSON 对象",
    "dict_type": "应为 JSON 对象",
    "list_type": "应为数组",
    "string_type": "应为文本",
}


def chinese(code: str, status: int) -> str:
    return _ZH_BY_CODE.get(code) or _ZH_BY_STATUS.get(status) or "请求无法处理"


def problem_response(
    status: int,
    code: str,
    detail: str,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    *,
    detail_zh: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An application/problem+json answer: code and field for programs, detail in English and
    detail_zh in Chinese for people."""
    body: dict[str, Any] = {
        "type": f"urn:zhengming:problem:{code}",
        "title": code,
        "status": status,
        "code": code,
        "detail": detail,
        "detail_zh": detail_zh or chinese(code, status),
    }
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors():
        # "body.subjects.0.name" names the field; the location kind (body, query, path) is kept
        # so a path parameter and a body field of one name stay apart.
        zh = _ZH_BY_ERROR.get(e["type"], "输入无效")
        with contextlib.suppress(KeyError, IndexError, ValueError):
            zh = zh.format(**(e.get("ctx") or {}))
        out.append(
            {
                "field": ".".join(str(p) for p in e["loc"]),
                "message": e["msg"],
                "message_zh": zh,
                "type": e["type"],
            }
        )
    return out


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


_ZH_COMPONENT = {
    "database": "数据库",
    "token keys (JWKS)": "令牌验证密钥（JWKS）",
    "token signing key": "令牌签名密钥",
}


def unavailable_response(component: str) -> JSONResponse:
    zh = _ZH_COMPONENT.get(component)
    return problem_response(
        503,
        "service_unavailable",
        f"the {component} is not answering; try again shortly",
        detail_zh=f"{zh}暂时不可用，请稍后重试" if zh else None,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Unauthorized)
    async def _unauthorized(_: Request, exc: Unauthorized) -> JSONResponse:
        log.info("request.rejected", code=exc.code, status=exc.status)
        return problem_response(exc.status, exc.code, exc.detail, headers=exc.headers)

    @app.exception_handler(KeysUnavailable)
    async def _no_keys(_: Request, exc: KeysUnavailable) -> JSONResponse:
        # The identity provider's key set cannot be fetched: nobody can be verified, but it is
        # not the caller's fault (the token may well be good).
        log.warning("auth.jwks_unavailable", error=str(exc))
        return unavailable_response("token keys (JWKS)")

    @app.exception_handler(DomainError)
    async def _refused(_: Request, exc: DomainError) -> JSONResponse:
        status = status_of(exc)
        log.info("request.rejected", code=exc.code, field=exc.field, status=status)
        return problem_response(status, exc.code, exc.detail, exc.field, detail_zh=exc.detail_zh)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        log.info("request.invalid", fields=[e["field"] for e in errors], types=[e["type"] for e in errors])
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(400, "malformed_body", "the body is not valid JSON", "body", errors)
        first = errors[0] if errors else {"field": None, "message": "invalid request", "message_zh": None}
        return problem_response(
            422,
            "invalid_input",
            f"{first['field']}: {first['message']}",
            first["field"],
            errors,
            detail_zh=f"{first['field']}：{first['message_zh']}" if first["field"] else None,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _framework(request: Request, exc: StarletteHTTPException) -> Response:
        # The framework's own answers (no route, wrong method, body too large or unreadable) are
        # problems like any other, never {"detail": ...}.
        headers = dict(exc.headers or {})
        field = None
        if exc.status_code == 404:
            code, detail = "route_not_found", f"no route {request.url.path}"
        elif exc.status_code == 405:
            allow = allowed_methods(request)
            headers["Allow"] = ", ".join(allow)
            code, detail = (
                "method_not_allowed",
                f"{request.method} is not served here; allowed: {headers['Allow']}",
            )
        elif exc.status_code == 413:
            code, detail = "payload_too_large", f"the body exceeds {MAX_BODY_BYTES} bytes"
            field = "body"
        elif exc.status_code == 400:
            code, detail = "malformed_body", "the body could not be read (UTF-8 JSON expected)"
        elif exc.status_code == 401:
            code, detail = "unauthorized", "a bearer token is required"
            headers.setdefault("WWW-Authenticate", "Bearer")
        else:
            code, detail = f"http_{exc.status_code}", str(exc.detail)
        log.info("request.rejected", code=code, status=exc.status_code)
        return problem_response(exc.status_code, code, detail, field, headers=headers or None)

    @app.exception_handler(ConcurrencyError)
    async def _conflict(_: Request, exc: ConcurrencyError) -> JSONResponse:
        return problem_response(409, exc.code, "the case changed meanwhile; reload and try again")

    @app.exception_handler(OutOfRange)
    async def _out_of_range(_: Request, exc: OutOfRange) -> JSONResponse:
        log.info("request.rejected", code=exc.code, field=exc.field, status=422)
        return problem_response(422, exc.code, str(exc), exc.field)

    async def _database(request: Request, exc: Exception) -> Response:
        if not database_away(exc):
            return await _unexpected(request, exc)
        outages.down("database", exc)
        return unavailable_response("database")

    for kind in (*DATABASE_AWAY, asyncpg.InterfaceError, OSError):
        app.add_exception_handler(kind, _database)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.error("request.failed", error=type(exc).__name__, exc_info=exc)
    return problem_response(500, "internal_error", "internal error; see the service log")


class BodyLimitMiddleware:
    """Bodies over MAX_BODY_BYTES are refused with 413 problem+json: at once when Content-Length
    says so, or when the streamed bytes pass the limit (Starlette's own limiter answers text)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = problem_response(
                413, "payload_too_large", f"the body exceeds {self.max_bytes} bytes", "body"
            )
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI passes its own HTTPException on from the body read.
                    raise FastAPIHTTPException(413)
            return message

        await self.app(scope, counted, send)


class LastResortMiddleware:
    """A bug answers 500 problem+json, logged once (Starlette's own last resort logs it, then
    re-raises it to the server, which logs the traceback a second time)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                raise
            response = await _unexpected(Request(scope), exc)
            await response(scope, receive, send)


_bearer = HTTPBearer(auto_error=False)
_PRINCIPAL = "zm_principal"


async def authenticate(request: Request) -> Principal:
    """The caller of a request from its bearer token (once per request; 401 without a good one,
    503 when the JWKS the token should be checked against cannot be fetched)."""
    known = request.scope.get(_PRINCIPAL)
    if isinstance(known, Principal):
        return known
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required")
    try:
        principal = await verify_async(token.strip(), AuthSettings())
    except AuthError as exc:
        raise Unauthorized(
            f"invalid token: {exc}", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from exc
    request.scope[_PRINCIPAL] = principal
    structlog.contextvars.bind_contextvars(user_id=principal.user_id, role=principal.role)
    return principal


async def current_principal(
    request: Request,
    # Declared for the OpenAPI security scheme; the token itself is read by `authenticate`.
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return await authenticate(request)


def _needs_principal(dependant: Dependant) -> bool:
    return any(d.call is current_principal or _needs_principal(d) for d in dependant.dependencies)


class AuthFirstRoute(APIRoute):
    """A route that checks the token before it reads the body: FastAPI validates the body before
    it runs dependencies, so an anonymous caller would learn the body's rules (422) before being
    told to authenticate (401)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not _needs_principal(self.dependant):
            return handler

        async def authenticated_first(request: Request) -> Response:
            await authenticate(request)
            return await handler(request)

        return authenticated_first


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


def acting(*roles: str) -> Callable[[Request, Principal], CommandContext]:
    """Dependency: the context of a command by a caller holding one of `roles`."""

    # A default, not an annotation: the annotations of this module are strings that FastAPI
    # resolves in its globals, where the local `require(...)` is not.
    def context(request: Request, principal: Principal = Depends(require(*roles))) -> CommandContext:  # noqa: B008
        return command_context(principal, request)

    return context


def create_app(service: str, *, title: str, description: str, version: str = "1.0.0") -> FastAPI:
    """A FastAPI app with problem handlers and request logging context; health routes are
    added by the runtime that knows the database and broker."""
    app = FastAPI(title=title, description=description, version=version)
    app.router.route_class = AuthFirstRoute
    install_problem_handlers(app)
    app.add_middleware(LastResortMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.state.service = service
    return app
