"""Gateway area: HAProxy in front of tritonserver (weighted routing, canaries, runtime weight changes, rate limits)."""
