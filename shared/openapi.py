"""The honest OpenAPI document of a service, and its Swagger UI served from the project's own assets.

FastAPI documents the success answer and its own 422 as `application/json`; every refusal of ours
is `application/problem+json` (shared/http.py). `install` post-processes the document once: a
`Problem` schema, the problem answers each operation can give (from what it declares: a token,
a body, parameters, a command), and the roles it admits (`x-roles`, read from its `require`
dependency, and named in the description in Chinese and English).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from starlette.staticfiles import StaticFiles

from shared.http import MAX_BODY_BYTES, RETRY_AFTER_S, ROLES_ADMITTED, current_principal, role_name
from shared.roles import OFFICER_ROLES

PROBLEM_MEDIA_TYPE = "application/problem+json"
VENDOR = Path(__file__).parent / "static" / "vendor"
"""The viewers' scripts and styles, copied from npm by `make docs-assets` (never from a CDN)."""
ASSETS_PATH = "/docs/assets"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details, with the detail in both languages. "
    "问题详情（RFC 9457）：`code` 供程序判断，`detail_zh`/`detail_en` 同时给出中英文说明。",
    "required": ["type", "title", "status", "code", "detail", "detail_zh", "detail_en"],
    "properties": {
        "type": {"type": "string", "description": "urn:zhengming:problem:<code>"},
        "title": {
            "type": "string",
            "description": "标题（按 Accept-Language） / title in the caller's language",
        },
        "status": {"type": "integer", "description": "HTTP 状态码 / the HTTP status"},
        "code": {"type": "string", "description": "机器可读的错误代码 / machine-readable code"},
        "detail": {
            "type": "string",
            "description": "说明（按 Accept-Language） / detail in the caller's language",
        },
        "detail_zh": {"type": "string", "description": "中文说明 / the detail in Chinese"},
        "detail_en": {"type": "string", "description": "英文说明 / the detail in English"},
        "field": {"type": "string", "description": "涉及的输入字段 / the input concerned"},
        "errors": {
            "type": "array",
            "description": "每个无效输入 / each invalid input",
            "items": {
                "type": "object",
                "required": ["field", "message", "message_zh", "type"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "message_zh": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}

ANSWERS: dict[int, str] = {
    400: "请求体无法读取（须为 UTF-8 编码的 JSON） / the body is not readable JSON",
    401: "缺少或无效的登录令牌（Bearer） / no valid bearer token",
    403: "角色或辖区无权进行此操作 / the caller's role or jurisdiction may not do this",
    404: "没有这个对象或地址 / no such matter or route",
    409: "与当前状态冲突（已被修改、重复或幂等键冲突） / conflicts with the current state "
    "(changed meanwhile, a duplicate, or an idempotency key in use)",
    413: f"请求体超过 {MAX_BODY_BYTES} 字节 / the body exceeds {MAX_BODY_BYTES} bytes",
    422: "输入无效或不符合业务规则 / invalid input or a rule of the procedure refuses it",
    503: "数据库、消息队列或令牌密钥暂时不可用，请稍后重试 / a component is not answering; try again shortly",
}

_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    503: {
        "Retry-After": {
            "description": f"等待秒数 / seconds to wait (e.g. {RETRY_AFTER_S})",
            "schema": {"type": "string"},
        }
    },
}


READINESS = "/readyz"
NOT_READY: dict[str, Any] = {
    "description": "未就绪：数据库、消息队列、消费者或工作日日历有一项不正常（`checks` 指明） / "
    "not ready: the database, the broker, a consumer or the working-day calendar is not (see `checks`)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["ready", "checks"],
                "properties": {
                    "ready": {"type": "boolean"},
                    "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
                },
            }
        }
    },
}
"""The readiness probe answers 503 with its checks (a probe reads them), not with a problem."""


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def roles_of(route: APIRoute) -> tuple[str, ...] | None:
    """The roles an operation admits: those of its `require` checks, every officer's when it only
    needs a token, None when it needs none."""
    admitted: set[str] | None = None
    authenticated = False
    for call in _calls(route.dependant):
        authenticated |= call is current_principal
        if call in ROLES_ADMITTED:
            roles = set(ROLES_ADMITTED[call])
            admitted = roles if admitted is None else admitted & roles
    if admitted is not None:
        return tuple(r for r in OFFICER_ROLES if r in admitted) + tuple(sorted(admitted - set(OFFICER_ROLES)))
    return OFFICER_ROLES if authenticated else None


def problem_statuses(route: APIRoute, roles: tuple[str, ...] | None) -> list[int]:
    """The problem answers an operation can give, from what it declares."""
    dependant = route.dependant
    methods = route.methods or set()
    command = bool(methods - {"GET", "HEAD"})
    statuses = {503}
    if roles is not None:
        statuses |= {401, 403}
    if route.body_field is not None or command:
        statuses |= {400, 413, 422}
    if dependant.path_params or dependant.query_params or dependant.header_params:
        statuses.add(422)
    if dependant.path_params or command:
        statuses.add(404)
    if command:
        statuses.add(409)
    return sorted(statuses)


def _roles_text(roles: tuple[str, ...] | None) -> str:
    if roles is None:
        return "无需登录 / no token needed"
    return f"可调用的角色 / roles allowed: {'、'.join(map(role_name, roles))}"


def document(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """The document with every operation's problems and roles (in place; returned for convenience)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        item = schema.get("paths", {}).get(route.path_format, {})
        roles = roles_of(route)
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is None:
                continue
            if roles is not None:
                operation["x-roles"] = list(roles)
            text = _roles_text(roles)
            operation["description"] = (
                f"{operation['description']}\n\n{text}" if operation.get("description") else text
            )
            responses = operation.setdefault("responses", {})
            for status in problem_statuses(route, roles):
                answer: dict[str, Any] = {
                    "description": ANSWERS[status],
                    "content": {PROBLEM_MEDIA_TYPE: problem},
                }
                if status in _HEADERS:
                    answer["headers"] = _HEADERS[status]
                responses[str(status)] = answer
            if route.path == READINESS:
                responses["503"] = NOT_READY
    # FastAPI's own validation-error shapes are never answered (ours is a Problem).
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def install(app: FastAPI) -> None:
    """Post-process the app's OpenAPI document once, and serve /docs from the project's assets."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, original())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    serve_docs(app)


def swagger_page(title: str, openapi_url: str, assets: str) -> HTMLResponse:
    """Swagger UI for one document, every script and style from `assets` (a path on this host)."""
    if not (VENDOR / "swagger-ui-bundle.js").exists():
        return missing_assets()
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon-32x32.png",
        # No badge asking an online validator about the document.
        swagger_ui_parameters={"validatorUrl": None},
    )


def missing_assets() -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><meta charset=utf-8><title>docs</title>"
        "<p>接口文档的查看器尚未构建：请运行 <code>make docs-assets</code>。</p>"
        "<p>The viewers are not built: run <code>make docs-assets</code>.</p>",
        status_code=503,
    )


def serve_docs(app: FastAPI) -> None:
    """Replace FastAPI's /docs and /redoc (scripts from public CDNs) by Swagger UI from our assets."""
    local = {"/docs", "/redoc", app.swagger_ui_oauth2_redirect_url}
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in local]
    app.mount(ASSETS_PATH, StaticFiles(directory=VENDOR, check_dir=False), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return swagger_page(f"{app.title} — API", root + openapi_url, root + ASSETS_PATH)
