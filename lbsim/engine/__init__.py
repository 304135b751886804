"""The SimPy model of clients, balancers and servers; the only package that imports simpy."""

from lbsim.engine.build import run

__all__ = ["run"]
