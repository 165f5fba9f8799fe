"""Image IO, datasets and the data module."""
