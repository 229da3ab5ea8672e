"""hilnet.scenario."""
