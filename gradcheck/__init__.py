"""gradcheck: verify hand-written gradients against independent references."""

__version__ = "0.1.0"
