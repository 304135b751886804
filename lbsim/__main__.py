"""Run the command line as ``python -m lbsim``."""

from lbsim.cli import main

main()
