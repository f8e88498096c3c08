"""HTTP plumbing shared by every service: app building, problem details, request context."""

from shared.http.app import Component, ReadinessCheck, build_app, worker_checks
from shared.http.problems import (
    PROBLEM_CONTENT_TYPE,
    field_errors,
    install_problem_handlers,
    problem_response,
)

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "Component",
    "ReadinessCheck",
    "build_app",
    "field_errors",
    "install_problem_handlers",
    "problem_response",
    "worker_checks",
]
