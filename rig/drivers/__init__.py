"""Drivers: how to talk to each instrument family (one file per family)."""
