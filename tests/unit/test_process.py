"""The collector's settings every service process runs with."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from piazza import cli
from shared import process


@pytest.fixture
def collector() -> Iterator[None]:
    """Python's own settings back after the test, whatever it changed."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_a_tuned_process_freezes_what_is_alive_and_collects_young_objects_less_often(collector: None) -> None:
    process.tune_gc()

    assert gc.get_threshold() == process.GC_THRESHOLDS == (20_000, 10, 10)
    assert gc.get_freeze_count() > 1000  # the modules' objects, out of the collector's sight
    assert gc.get_count()[0] < 100  # collected just before


def test_every_served_process_is_tuned_before_it_serves(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli.uvicorn, "run", lambda *_a, **_k: seen.update(threshold=gc.get_threshold()))
    monkeypatch.setattr(cli, "configure_logging", lambda *_a, **_k: None)  # the suite's logging stays

    cli._serve("Piazza", "inbox-api", [cli.WEB_COMPONENTS["inbox-api"]], "127.0.0.1", 0)

    assert seen["threshold"] == process.GC_THRESHOLDS
