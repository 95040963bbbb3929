"""PyTorch datasets over the arrays the datasets stage writes (one module per data family)."""

from trainset.loaders.flu import FluDataset

__all__ = ["FluDataset"]
