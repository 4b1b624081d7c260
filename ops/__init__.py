"""Operations: /healthz, Prometheus metrics, and process lifelines (what dies with what)."""
