"""A balancer instance and the stages of its request path."""
