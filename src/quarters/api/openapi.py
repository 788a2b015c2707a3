"""The OpenAPI document: JSON bodies the routes read themselves, and honest response schemas."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON Schema with its definitions inlined (for ``openapi_extra``)."""
    schema = model.model_json_schema()
    return _inline(schema, schema.get("$defs", {}))


def json_body(schema: dict[str, Any], *media_types: str) -> dict[str, Any]:
    """``openapi_extra`` declaring the JSON body a route reads through ``BodyDep``."""
    content = {m: {"schema": schema} for m in (media_types or ("application/json",))}
    return {"requestBody": {"required": True, "content": content}}


def install(app: FastAPI) -> None:
    """Generate the document once, fixing what FastAPI cannot know: a route that answers with
    an already serialised JSON Response class is documented as a string, but it is a JSON
    object."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = generate()
            for item in doc.get("paths", {}).values():
                for operation in item.values():
                    for response in operation.get("responses", {}).values():
                        for media, content in response.get("content", {}).items():
                            if "json" in media and content.get("schema") == {"type": "string"}:
                                content["schema"] = {"type": "object"}
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
