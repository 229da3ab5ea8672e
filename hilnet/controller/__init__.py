"""hilnet.controller."""
