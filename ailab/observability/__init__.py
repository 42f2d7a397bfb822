"""Generators for dashboards/: Grafana dashboards, Prometheus config, rules and rule tests, Alertmanager."""
