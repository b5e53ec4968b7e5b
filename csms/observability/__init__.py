"""Operating the CSMS: Prometheus metrics, readiness, and the routes that serve them."""
