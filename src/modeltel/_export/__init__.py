"""Where telemetry goes, off the request path: providers, exporters, aggregation, records.

``runtime`` (the process-wide providers and settings, ``configure``), ``exporters`` (OTLP or
OTLP-JSON files from the environment), ``guarded`` (fork-aware exporters that count failures
and split requests), ``queues`` (batch queues that count what they drop), ``aggregate`` and
``recorders`` (exact local metric aggregation), ``records`` (the columnar prediction records),
``span_encoding`` (OTLP bytes for modeltel's lean spans), ``app_sdk`` (an application's own
providers), ``otlp_json`` / ``otlp_flat`` (the files, and reading OTLP back), ``prometheus``.

Imported by the call path; never imports the CLI, the loop or operations.
"""
