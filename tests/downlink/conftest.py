from downlink_support import harness, make_harness  # noqa: F401 - fixtures
