"""The reliability and security suite: faults, redelivery, 429 storms, load, fuzzing, secrets.

``harness`` holds the machinery shared by the tests and by ``python -m tests.reliability.report``,
which regenerates the figures in the README's Reliability section.
"""
