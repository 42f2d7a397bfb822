"""Monitoring at scale on the local platform (days 55, 56, 68): two-level federation, VictoriaMetrics as the
long-term store (the embedded stand-in for Thanos), history backfilled so long windows exist, storage and memory
per series, recording rules over growing windows, alerts fired for real, and what label cardinality costs."""
