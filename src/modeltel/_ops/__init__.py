"""On-call artefacts generated from the telemetry names: Grafana dashboards and Prometheus alert
rules (``modeltel dashboards``). Never imported by the call path."""
