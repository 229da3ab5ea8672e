"""hilnet.link."""
