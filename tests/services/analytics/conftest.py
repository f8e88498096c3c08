"""The analytics service wired to the rest of the pipeline, in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.analytics.config import AnalyticsSettings


@pytest.fixture
def analytics_settings(settings_kwargs: dict[str, object]) -> AnalyticsSettings:
    """Analytics settings for this test (token checks are not cached, so revocations show at once)."""
    return AnalyticsSettings(**settings_kwargs, token_cache_seconds=0)  # type: ignore[arg-type]


@pytest.fixture
async def analytics(
    api: httpx.AsyncClient, analytics_settings: AnalyticsSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """The analytics API and worker next to the ``api`` pipeline; the API asks the in-process inbox
    who a token belongs to."""
    from services.analytics.app import component
    from services.analytics.consumers import worker_component
    from shared.http import build_app
    from tests.support import serving

    inbox: Any = api.app  # type: ignore[attr-defined]
    web = build_app(
        "analytics-test", [component(analytics_settings, inbox_transport=httpx.ASGITransport(app=inbox))]
    )
    worker = build_app("analytics-test-worker", [worker_component(analytics_settings)])
    async with serving(worker), serving(web) as client:
        yield client
