"""Bridges to the tools users already run: veRL (training data and reward) and lm-evaluation-harness (tasks)."""
