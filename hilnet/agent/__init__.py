"""hilnet.agent."""
