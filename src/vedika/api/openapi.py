"""The OpenAPI schema as clients see it: every error status a call can answer, in the
API.md error shape, and 400 (not FastAPI's default 422) for invalid input."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error", "message", "status_code"],
    "properties": {
        "error": {"type": "string", "description": "A machine word, e.g. credits_exhausted."},
        "message": {"type": "string", "description": "A sentence for a person."},
        "status_code": {"type": "integer"},
        "details": {},
    },
}

# Status codes by what a call does: everything may be invalid, rate limited or find the
# database down; calls with a session may be unauthorised; and so on.
COMMON = {
    "400": "Invalid input (validation_error, bad_request, ...).",
    "413": "The request body is too large.",
    "429": "Rate limited; see Retry-After.",
    "503": "The database or Redis is unavailable, or the server is draining.",
}
AUTHED = {
    "401": "No session, or an unknown or expired one.",
    "403": "The device_id sent does not match the session's.",
    "404": "Unknown, or not yours.",
}
VOICE = {
    "413": "The recording or the text is too large.",
    "502": "The transcription or speech service failed.",
    "503": "Transcription or speech is not configured on this server, or the database or "
    "Redis is unavailable.",
    "504": "The transcription or speech service timed out.",
}
ACCOUNTS = {
    "401": "No session, a session not signed in, or a wrong email or password.",
    "403": "A cross-site request (send X-Requested-With or a bearer), or a device mismatch.",
    "404": "Unknown, or not yours.",
    "409": "An account with this email already exists.",
}
CHAT = {
    "402": "No Vedika coins left today.",
    "409": "This client_message_id was used for a different message.",
    "502": "The model provider failed.",
    "504": "The model provider timed out.",
}


# The /v1 endpoints' errors (vedika.api.errors.openai_error_body).
OPENAI_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": "string"},
                "param": {"type": ["string", "null"]},
            },
        }
    },
}


def install_openapi(app: FastAPI) -> None:
    def schema() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        doc.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        doc["components"]["schemas"]["OpenAIError"] = OPENAI_ERROR_SCHEMA
        ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for path, operations in doc.get("paths", {}).items():
            for op in operations.values():
                responses = op.setdefault("responses", {})
                responses.pop("422", None)
                if path.startswith("/v1/"):
                    continue  # OpenAI's error shape, declared by its routes
                codes = dict(COMMON)
                if op.get("security"):
                    codes |= AUTHED
                if path.startswith(("/ai/chat", "/ai/conversations")):
                    codes |= AUTHED | CHAT
                if "{" in path:
                    codes["404"] = AUTHED["404"]
                if path.startswith("/auth/") and not path.startswith("/auth/device-session"):
                    codes |= ACCOUNTS
                if path == "/auth/device-session/validate":
                    codes["401"] = AUTHED["401"]
                if path in ("/ai/transcribe", "/ai/speech"):
                    codes |= AUTHED | VOICE
                if path == "/ai/transcribe":
                    codes["415"] = "That is not audio Vedika can transcribe."
                if path.startswith("/files"):
                    codes |= AUTHED | {"415": "The file type is not supported."}
                for code, description in codes.items():
                    responses.setdefault(code, {"description": description, **ref})
        app.openapi_schema = doc
        return doc

    app.openapi = schema  # type: ignore[method-assign]


def multipart_body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads a multipart form itself (FastAPI cannot
    see its fields): the form's schema."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }
