"""``/openapi.json``: the HTTP API, generated from its pydantic models.

The endpoints are the table of :mod:`chatbuddy.web.operations`; this module
writes the OpenAPI 3.1 document from it, with the JSON schemas of the models
its bodies and answers name.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from chatbuddy.web.operations import OPERATIONS, Lines, Operation
from chatbuddy.wire.api import ChatRequest

_SCHEMAS = "#/components/schemas/{model}"


def document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this server's HTTP API (``version``: the package's)."""
    models = (
        {o.body for o in OPERATIONS if o.body}
        | {answer for o in OPERATIONS for answer in o.answers.values() if isinstance(answer, type)}
        | {
            answer.model
            for o in OPERATIONS
            for answer in o.answers.values()
            if isinstance(answer, Lines)
        }
    )
    ordered = sorted(models, key=lambda model: model.__name__)
    _, definitions = models_json_schema(
        [(model, "validation" if model is ChatRequest else "serialization") for model in ordered],
        ref_template=_SCHEMAS,
    )
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ChatBuddy HTTP API",
            "version": version,
            "description": (
                "The chat server's HTTP API. The chat itself is a WebSocket: its protocol "
                "is /asyncapi.json (and docs/protocol.md). Admin endpoints need "
                "`Authorization: Bearer TOKEN` (docs/admin.md)."
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "chat", "description": "Chatting without a WebSocket."},
            {"name": "admin", "description": "Sessions and stats, behind the admin token."},
            {"name": "operator", "description": "A person taking a conversation over."},
            {"name": "operations", "description": "Health, readiness and metrics."},
            {"name": "widget", "description": "The embeddable widget's check."},
        ],
        "paths": paths,
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {
                "admin": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token (docs/admin.md says where to find it).",
                }
            },
        },
    }


def _operation(operation: Operation) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status, answer in sorted(operation.answers.items()):
        if isinstance(answer, tuple):
            media, description = answer
            content = {media: {"schema": {"type": "string"}}}
        elif isinstance(answer, Lines):
            description = answer.description
            line = {"$ref": _SCHEMAS.format(model=answer.model.__name__)}
            content = {"application/x-ndjson": {"schema": line}}
        else:
            description = (answer.__doc__ or answer.__name__).strip().splitlines()[0]
            content = {
                "application/json": {"schema": {"$ref": _SCHEMAS.format(model=answer.__name__)}}
            }
        answers[str(status)] = {"description": description, "content": content}
        if status < 300 and operation.answer_headers:
            answers[str(status)]["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in operation.answer_headers.items()
            }
    spec: dict[str, Any] = {
        "tags": [operation.tag],
        "summary": operation.summary,
        "operationId": _operation_id(operation),
        "responses": answers,
    }
    if operation.description:
        spec["description"] = operation.description
    if operation.auth is not None:
        spec["security"] = [{operation.auth: []}]
    if operation.parameters:
        spec["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "description": p.description,
                "required": p.required,
                "schema": p.schema,
            }
            for p in operation.parameters
        ]
    if operation.body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": _SCHEMAS.format(model=operation.body.__name__)}
                }
            },
        }
    return spec


def _operation_id(operation: Operation) -> str:
    words = [w for w in operation.path.replace("{", "").replace("}", "").split("/") if w]
    return operation.method + "_" + "_".join(w.replace(".", "_") for w in words)
