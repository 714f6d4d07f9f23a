"""Sweeps: the plan of cells, one cell's conversion and measurement, the run loop, and runs kept in a store."""
