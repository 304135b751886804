"""The sim-to-real check: one trace through real HAProxy and NGINX and through lbsim.

``python -m benchmarks.sim_to_real`` (from the repository's root) runs it; see
``harness.py`` for what it does and the README's "Against real HAProxy and NGINX" for the table.
"""
