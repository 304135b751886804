"""The scenario file: its schema by section, loading, ``--set`` overrides, the sweep grid and
the messages for bad input. Nothing here runs a simulation.
"""
