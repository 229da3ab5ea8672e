"""hilnet.agent.cla."""
