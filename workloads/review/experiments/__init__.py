"""Runners of the review area, by idea: compiled.py (summary tables, comparison curves, learning curve)."""
