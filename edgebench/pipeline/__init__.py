"""The pipeline: bench, compare, A/B rounds, sweeps (plan, cells, run, resume), gate rules and verdicts."""
