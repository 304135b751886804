"""Commands built on the core: capacity planning, validation against queueing theory,
regression against the baseline, hash remapping, and the theory itself.
"""
