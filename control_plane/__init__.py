"""Sentiedge control plane: model registry, privacy ledger, cohort merge, node registry (gRPC)."""

__version__ = "0.1.0"
