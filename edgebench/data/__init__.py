"""Data: model sources, input plans and datasets, integer input domains."""
