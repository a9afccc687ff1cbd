"""Session stores: the protocol and the built-in implementations."""
