"""Alerting tests use the receivers of :mod:`tests.receivers`, registered in tests/conftest.py."""
