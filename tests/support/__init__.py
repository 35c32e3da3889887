"""Helpers shared by the tests (the served emulator, ...)."""
