"""The results store and selecting runs from it."""
