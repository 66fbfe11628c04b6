"""Recording: the MLflow store (store), claims and leases on runs (claims), what one run records
(recorder), and the one tag vocabulary (tags)."""
