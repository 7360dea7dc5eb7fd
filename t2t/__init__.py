"""t2t: a JAX/Flax encoder-decoder Transformer for machine translation."""

__version__ = "0.1.0"
