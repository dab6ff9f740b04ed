"""Prometheus exposition, for teams that scrape instead of running an OpenTelemetry collector.

Collection / export time only: nothing on the hot path imports this module. The runtime imports
it when ``MODELTEL_PROMETHEUS_PORT`` is set and adds the reader :func:`start_prometheus` returns to
the ``MeterProvider`` it builds.

Why a subclass: ``opentelemetry-exporter-prometheus``'s ``PrometheusMetricReader`` collects from
the SDK on every scrape and hands the result to its ``_receive_metrics``, which queues it for the
Prometheus collector. modeltel's per-prediction metrics never pass through the SDK (they are
aggregated locally, see ``_aggregate``), so the override of ``_receive_metrics`` routes that
hand-over through :class:`~modeltel._export.exporters.MergingMetricExporter`, the same merge every other
export uses. Two more details keep scrapes whole: the SDK hands nothing over when its own
instruments have no data (so each scrape merges even then), and ``force_flush`` must not collect
(the base class would queue a second copy of every series for the next scrape).

Each reader has its own ``CollectorRegistry`` (not prometheus_client's global one, which an
application may use for its own metrics) and its own HTTP server. ``configure()`` builds the new
runtime before it shuts the old one down, so a port stays open across re-configuration: the new
reader takes over the running server and the old reader's shutdown leaves it alone.

Names as scraped (the exporter's mapping, checked by ``tests/test_prometheus.py``): dots become
underscores, a unit becomes a suffix (``s`` -> ``_seconds``, ``{...}`` annotations and ``1`` ->
nothing, a currency code stays as written), counters end in ``_total``, histograms expose
``_bucket`` (with ``le``), ``_sum`` and ``_count``; attribute keys become labels the same way
(``ml.model.name`` -> ``ml_model_name``). For example ``ml.predictions`` -> ``ml_predictions_total``,
``ml.prediction.duration`` -> ``ml_prediction_duration_seconds_bucket``, ``ml.prediction.cost`` ->
``ml_prediction_cost_USD_total``. Every series also carries ``otel_scope_name``,
``otel_scope_version`` and ``otel_scope_schema_url``, and the resource is exposed as ``target_info``.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.resources import Resource

from modeltel._errors import ConfigurationError
from modeltel._export.aggregate import Aggregator
from modeltel._export.exporters import MergingMetricExporter

try:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigurationError(
        f"MODELTEL_PROMETHEUS_PORT needs the Prometheus exporter: pip install 'modeltel[prometheus]' ({exc})"
    ) from None

__all__ = ["ModeltelPrometheusReader", "start_prometheus"]


class _CollectorFeed(MetricExporter):
    """Hands merged metrics to the Prometheus collector, which renders them on the next scrape."""

    def __init__(self, reader: PrometheusMetricReader) -> None:
        super().__init__(preferred_temporality={})
        self._reader = reader

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        # The base class's hand-over (queue for the next render), not the merging override.
        PrometheusMetricReader._receive_metrics(self._reader, metrics_data, timeout_millis)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


class _Endpoint:
    """One HTTP server (host, port) and the registry it serves; outlives the reader that opened it."""

    def __init__(self, host: str, port: int) -> None:
        self.registry = CollectorRegistry()
        try:
            self.server, self.thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigurationError(
                f"MODELTEL_PROMETHEUS_PORT={port}: cannot listen on {host}:{port} ({exc})"
            ) from None
        self.key = (host, int(self.server.server_address[1]))
        self.owner: ModeltelPrometheusReader | None = None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


_endpoints: dict[tuple[str, int], _Endpoint] = {}
_endpoints_lock = threading.Lock()


class ModeltelPrometheusReader(PrometheusMetricReader):
    """A ``PrometheusMetricReader`` whose scrapes include modeltel's locally aggregated metrics."""

    def __init__(self, endpoint: _Endpoint, aggregator: Aggregator, resource: Resource) -> None:
        super().__init__(registry=endpoint.registry)
        self._endpoint = endpoint
        self._merging = MergingMetricExporter(_CollectorFeed(self), aggregator, resource)
        self._scrape_lock = threading.Lock()
        self._received = False
        # The SDK hands nothing over when none of its own instruments has data, which would hide
        # modeltel's aggregates from that scrape; each scrape therefore goes through _scrape.
        self._collector._callback = self._scrape  # type: ignore[assignment]

    def _scrape(self) -> None:
        with self._scrape_lock:
            self._received = False
            self.collect()
            if not self._received:
                self._receive_metrics(MetricsData(resource_metrics=[]))

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._received = True
        self._merging.export(metrics_data, timeout_millis=timeout_millis)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Nothing to push: Prometheus pulls.

        The base class collects here, queueing a copy of every series that the next scrape would
        serve next to its own, and Prometheus rejects a scrape with duplicate series.
        """
        return True

    @property
    def port(self) -> int:
        """The port actually listened on (useful when started with port 0)."""
        return int(self._endpoint.server.server_address[1])

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Stop serving this reader's metrics; close the server unless a newer reader took it over."""
        with _endpoints_lock:
            endpoint = self._endpoint
            if endpoint.owner is not self:
                return
            super().shutdown(timeout_millis=timeout_millis)
            endpoint.owner = None
            del _endpoints[endpoint.key]
        endpoint.close()


def start_prometheus(
    port: int, aggregator: Aggregator, resource: Resource, host: str = "0.0.0.0"
) -> ModeltelPrometheusReader:
    """Serve ``/metrics`` on ``host:port`` and return the reader to add to the ``MeterProvider``.

    The reader exposes both what the SDK's instruments collected and ``aggregator``'s metrics
    (``resource`` labels them when the SDK collected nothing). Port 0 picks a free port (see
    :attr:`ModeltelPrometheusReader.port`). A second call for the same host and port (a
    re-``configure()``) reuses the running server and serves the new reader's metrics instead.

    >>> from opentelemetry.sdk.metrics import MeterProvider
    >>> reader = start_prometheus(0, Aggregator(), Resource.create({}), host="127.0.0.1")
    >>> provider = MeterProvider(metric_readers=[reader])
    >>> provider.shutdown()
    """
    with _endpoints_lock:
        endpoint = _endpoints.get((host, port)) if port else None
        if endpoint is None:
            endpoint = _Endpoint(host, port)
            _endpoints[endpoint.key] = endpoint
        previous = endpoint.owner
        if previous is not None:
            endpoint.registry.unregister(previous._collector)
        reader = ModeltelPrometheusReader(endpoint, aggregator, resource)
        endpoint.owner = reader
        return reader
