"""Periodic (weekly, monthly) reports: HTML with server-side SVG charts, and CSV at conversation grain."""
