"""Review experiments: week summaries, comparison curves and the program's learning curve, re-presenting the rows
and series other experiments stored (derived results; no new measurement)."""
