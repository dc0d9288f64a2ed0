"""Shared test helpers: generated datasets, tiny networks, command lines."""
