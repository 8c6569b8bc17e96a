"""The built-in suites, shipped as package data (`harness_suites`); found by harness.data.catalog."""
