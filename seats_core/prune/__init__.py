"""Attaching a method to a model: the config, the methods registry, the Pruner's hooks, the token layout and the trace in original coordinates."""
