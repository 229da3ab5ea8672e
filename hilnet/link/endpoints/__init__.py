"""hilnet.link.endpoints."""
