"""Training-aware compression: fine-tuning through PyTorch (the `train` extra)."""
