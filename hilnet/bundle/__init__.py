"""hilnet.bundle."""
