"""Prometheus metrics of the webhook worker."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "piazza_webhook_deliveries_total",
    "Outgoing webhook deliveries: created, then succeeded or failed (after the last retry)",
    ["outcome"],
)
ATTEMPTS = Counter(
    "piazza_webhook_attempts_total",
    "Requests to webhook endpoints by result: 2xx, 3xx, 4xx, 5xx, timeout, error",
    ["result"],
)
ATTEMPT_SECONDS = Histogram(
    "piazza_webhook_attempt_seconds",
    "Time from sending a delivery to the endpoint's answer (or the failure)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
IN_FLIGHT = Gauge(
    "piazza_webhook_requests_in_flight",
    "Requests to webhook endpoints under way",
    multiprocess_mode="livesum",
)
