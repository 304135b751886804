"""The command starts without the heavy libraries: pandas and matplotlib are imported only by
the commands that use them, so `lbsim --help` and `lbsim policies` answer at once."""

import subprocess
import sys


def test_importing_the_command_line_imports_neither_pandas_nor_matplotlib():
    code = "import lbsim.cli, sys; print('pandas' in sys.modules, 'matplotlib' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["False", "False"]
