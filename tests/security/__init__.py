"""Security tests: each reproduces an attack on a listener or on output, and fails if the hole reopens."""
