"""Metrics and the health/metrics HTTP server."""
