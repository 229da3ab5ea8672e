"""hilnet.testbed."""
