"""randstruct: randomness and structure during learning in RNNs."""

__version__ = "0.1.0"
