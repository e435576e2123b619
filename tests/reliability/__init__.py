"""Tests for every case of RELIABILITY.md sections A (reports) and B (MLflow sources)."""
