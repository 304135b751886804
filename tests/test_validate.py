"""`lbsim validate --quick` is part of the test suite: every case must pass."""

import pandas as pd
import pytest
from click.testing import CliRunner

from lbsim.cli import main

pytestmark = pytest.mark.slow


def test_quick_validation_passes_every_case(tmp_path, monkeypatch):
    # Run from a copy of the repository's layout: a quick run leaves the committed full table alone.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "--quick", "--jobs", "2", "--quiet"])
    assert not (tmp_path / "results" / "validation").exists()
    tmp_path = tmp_path / "results" / "validation-quick"
    table = pd.read_csv(tmp_path / "validation.csv")
    failed = table[~table["pass"]]
    assert result.exit_code == 0, failed.to_string()
    assert len(table) >= 40
    assert (tmp_path / "validation.md").read_text().count("| pass |") == len(table)
