"""Operations endpoints: health and Prometheus metrics."""
