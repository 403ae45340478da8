"""Prometheus metrics and one access-log line per request, as pure ASGI middleware."""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("digitserve.access")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The service's metrics, in a registry of their own so that each app instance is independent."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "digitserve_http_requests", "HTTP requests by route and status.", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "digitserve_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter("digitserve_predictions", "Predicted digits.", ["digit"], registry=self.registry)
        self.model_info = Gauge(
            "digitserve_model_info", "The loaded model (value is always 1).", ["name", "version", "device", "backend"], registry=self.registry
        )

        # Each labelled child is looked up once: `labels()` takes a lock and builds a key per call.
        self._digit_counters = [self.predictions.labels(digit=str(digit)) for digit in range(10)]
        self._request_children: dict[tuple[str, str, int], tuple] = {}
        self._shown_model: tuple[str, str, str] | None = None

    def show_model(self, classifier) -> None:
        """Label the model-info gauge with what serves now: the backend can change once, after start-up."""
        shown = (classifier.name, classifier.version, classifier.backend)
        if shown == self._shown_model:
            return
        self.model_info.clear()
        self.model_info.labels(name=classifier.name, version=classifier.version, device=classifier.device(), backend=classifier.backend).set(1)
        self._shown_model = shown

    def count_predictions(self, digits) -> None:
        """Count one prediction per digit in `digits`."""
        for digit in digits:
            self._digit_counters[int(digit)].inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request and record its latency."""
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(method=method, route=route, status=str(status)), self.latency.labels(method=method, route=route))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class RequestObserver:
    """Times every HTTP request, counts it by route template and status, and logs one line."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            # Route templates, not raw paths, keep the label set small whatever clients request.
            route_name = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.observe_request(method, route_name, status, elapsed)
            client = scope.get("client") or ("-", 0)
            access_logger.info('%s "%s %s" %d %.1fms', client[0], method, scope["path"], status, elapsed * 1000)
