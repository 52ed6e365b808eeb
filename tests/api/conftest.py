"""Fixtures of the partner-API suites. ``referral_in(status)`` (an IOM → DP referral built through the
services) is defined once in ``tests/conftest.py``: the audit suites use it too."""
