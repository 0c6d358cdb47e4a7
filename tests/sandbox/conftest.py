"""Fixtures shared by the simulator tests."""
