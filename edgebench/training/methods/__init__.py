"""Compression methods that train: gradual pruning, clustering, low-rank factorization, distillation (torch)."""
