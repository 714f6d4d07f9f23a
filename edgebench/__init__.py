"""edgebench: which format, precision and compression of a model runs best on each device."""

__version__ = "0.1.0"
