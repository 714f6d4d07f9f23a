"""Data files that ship in the package: device profiles and the demo (see edgebench.paths)."""
