"""hilnet.report."""
