"""Engine settings of the PostgreSQL store."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.db import create_engine


async def test_api_engines_run_no_parallel_plans_and_no_jit(database_url: str, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL settings")
    for parallel, expected in ((False, "0"), (True, None)):
        engine = create_engine(database_url, parallel_plans=parallel)
        try:
            async with engine.connect() as connection:
                workers = await connection.scalar(text("SHOW max_parallel_workers_per_gather"))
                jit = await connection.scalar(text("SHOW jit"))
        finally:
            await engine.dispose()
        assert jit == "off"
        if expected is not None:
            assert workers == expected
        else:
            assert workers != "0", "the server's own setting stays"
