"""Test settings only (``config.settings.test``, ``bench.settings``): the flush that the test framework runs
between transactional tests, able to empty the append-only audit table on SQLite. See its command."""
