"""Prometheus metrics, in a registry of our own (several apps in one process stay apart)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "vedika_http_requests_total", "HTTP requests", ["method", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "vedika_http_request_seconds", "HTTP request time", registry=r
        )
        self.generations_started = Counter(
            "vedika_generations_started_total", "Answers started", registry=r
        )
        self.generations_finished = Counter(
            "vedika_generations_finished_total",
            "Answers finished by final status",
            ["status"],
            registry=r,
        )
        self.generations_live = Gauge(
            "vedika_generations_live", "Answers being generated", registry=r
        )
        self.sockets = Gauge("vedika_websockets_open", "Open WebSocket connections", registry=r)
        self.flushes = Counter("vedika_flushes_total", "Partial-text flush commits", registry=r)
        self.reaped = Counter(
            "vedika_reaped_total", "Answers marked interrupted by the reaper", registry=r
        )
        self.endings_waiting = Gauge(
            "vedika_endings_waiting_for_database",
            "Answers whose ending is being stored again after the database failed",
            registry=r,
        )
        self._finished: dict[str, Counter] = {}

    def finished(self, status: str) -> None:
        """Count an answer's end. The child of each status is kept: prometheus'
        `labels()` takes a lock and builds a key on every call (1% of a turn's CPU)."""
        child = self._finished.get(status)
        if child is None:
            child = self._finished[status] = self.generations_finished.labels(status=status)
        child.inc()


METRICS = Metrics()
