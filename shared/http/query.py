"""A query string validated as one pydantic model, for routes that serve many requests.

FastAPI handles query parameters one by one, looking at each one's type again on every request. For
the conversation list's fourteen parameters that cost the web process more CPU than validating them
all as one model does: 1.25-1.27 against 1.05-1.09 ms of CPU per page in all (``bench/listing.py``'s
(a) on the development store, two runs each, warm-up included). :class:`QueryModel` validates the
model, answers bad input as FastAPI does (a ``RequestValidationError``, so the same 400 problem with
``query.<name>`` fields), and describes the parameters in the OpenAPI document from the model's
JSON schema.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class QueryModel(Generic[Model]):
    """A dependency giving ``model`` validated from the query string; ``openapi`` is its parameters,
    for the route's ``openapi_extra``. A field whose type is a list takes every value of a repeated
    parameter; any other takes the last, as FastAPI does."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        schema = model.model_json_schema()
        if "$defs" in schema:
            raise TypeError(f"{model.__name__}: query parameters must be plain values, not models")
        properties: dict[str, dict[str, Any]] = schema["properties"]
        required = set(schema.get("required", ()))
        self.lists = frozenset(name for name, field in properties.items() if _is_array(field))
        self.openapi: dict[str, Any] = {
            "parameters": [_parameter(name, field, name in required) for name, field in properties.items()],
            # As FastAPI documents a route with parameters of its own (the app's document then says
            # 400, with problem details: shared/http/app.py).
            "responses": {"422": {"description": "Validation Error"}},
        }

    async def __call__(self, request: Request) -> Model:
        # A coroutine although it awaits nothing: FastAPI runs a plain function dependency in a
        # thread, a hop that cost more than the validation.
        params = request.query_params
        values = {
            name: params.getlist(name) if name in self.lists else value for name, value in params.items()
        }
        try:
            return self.model.model_validate(values)
        except ValidationError as exc:
            errors = [{**error, "loc": ("query", *error["loc"])} for error in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from None


def _is_array(field: dict[str, Any]) -> bool:
    return field.get("type") == "array" or any(
        option.get("type") == "array" for option in field.get("anyOf", ())
    )


def _parameter(name: str, field: dict[str, Any], required: bool) -> dict[str, Any]:
    schema = {key: value for key, value in field.items() if key != "description"}
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": required, "schema": schema}
    if "description" in field:
        parameter["description"] = field["description"]
    return parameter
