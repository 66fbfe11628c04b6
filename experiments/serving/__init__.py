"""Serving: trained runs used on new inputs (predict, evaluate) and the MLflow UI (ui)."""
