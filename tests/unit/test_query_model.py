"""A query string validated as one model: values, lists, errors and the OpenAPI parameters."""

from __future__ import annotations

from typing import Annotated, Literal

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from shared.http import install_problem_handlers
from shared.http.query import QueryModel


class Things(BaseModel):
    kind: Literal["a", "b"] | None = None
    tags: list[str] | None = Field(None, description="Repeat for several.")
    limit: int = Field(10, ge=1, le=20)


THINGS = QueryModel(Things)


@pytest.fixture
async def api() -> httpx.AsyncClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/things", openapi_extra=THINGS.openapi)
    async def things(query: Annotated[Things, Depends(THINGS)]) -> dict[str, object]:
        return query.model_dump()

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_values_are_validated_lists_take_every_value_and_others_the_last(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get(
        "/things", params=[("kind", "a"), ("tags", "x"), ("tags", "y"), ("limit", "3"), ("limit", "4")]
    )

    assert response.json() == {"kind": "a", "tags": ["x", "y"], "limit": 4}
    assert (await api.get("/things", params={"unknown": "1"})).json() == {
        "kind": None,
        "tags": None,
        "limit": 10,
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [({"kind": "c"}, "query.kind"), ({"limit": "0"}, "query.limit"), ({"limit": "x"}, "query.limit")],
)
async def test_bad_values_are_the_same_400_as_fastapis_own(
    api: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await api.get("/things", params=params)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_failed"
    assert {error["field"] for error in body["errors"]} == {field}


async def test_the_openapi_document_lists_the_parameters(api: httpx.AsyncClient) -> None:
    operation = (await api.get("/openapi.json")).json()["paths"]["/things"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}

    assert set(parameters) == {"kind", "tags", "limit"}
    assert all(p["in"] == "query" and p["required"] is False for p in parameters.values())
    assert parameters["kind"]["schema"]["anyOf"][0]["enum"] == ["a", "b"]
    assert parameters["tags"]["description"] == "Repeat for several."
    assert parameters["limit"]["schema"]["maximum"] == 20
    assert THINGS.lists == {"tags"}
    assert "422" in operation["responses"]  # as FastAPI documents parameters of its own


def test_a_nested_model_is_refused() -> None:
    class Inner(BaseModel):
        x: int

    class Outer(BaseModel):
        inner: Inner | None = None

    with pytest.raises(TypeError, match="plain values"):
        QueryModel(Outer)
