"""What runs a node: one driver per DTN stack (hilnet's agent, NASA's ION) behind one seam."""
