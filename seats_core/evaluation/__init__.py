"""Thin wrappers that plug the SEATS engine into other evaluation frameworks (optional dependencies).

Nothing here is imported by `seats_core` itself: each module imports its host framework only when used.
"""
