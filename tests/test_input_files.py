"""Files a scenario names are checked before they are read: devices, the kernel's
pseudo-files and oversized files are refused without reading them."""

import os

import pytest

from lbsim import input_files
from lbsim.distributions import parse_distribution
from lbsim.errors import ConfigError
from lbsim.input_files import read_input


def test_a_device_is_refused_without_reading_it():
    # /dev/zero never ends: reading it would fill memory.
    with pytest.raises(ConfigError, match="must be a regular file; got '/dev/zero', which is not"):
        parse_distribution("empirical(/dev/zero)")


@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="needs Linux's /proc")
def test_a_kernel_pseudo_file_is_refused_and_its_contents_never_shown():
    # It holds the environment (secrets, often) but reports a size of 0.
    with pytest.raises(ConfigError) as error:
        parse_distribution("empirical(/proc/self/environ)")
    assert "which is empty" in str(error.value)
    assert os.environ.get("PATH", "/") not in str(error.value)


def test_a_file_over_the_limit_is_refused_by_its_size(tmp_path, monkeypatch):
    monkeypatch.setattr(input_files, "MAX_BYTES", 1024)
    path = tmp_path / "big.csv"
    path.write_text("0.01\n" * 1000)
    with pytest.raises(ConfigError, match=r"must be at most 0 MiB; got .*big\.csv"):
        read_input(path)


def test_empirical_values_must_be_finite(tmp_path):
    (tmp_path / "sizes.csv").write_text("0.01\ninf\n")
    with pytest.raises(ConfigError, match="all finite and >= 0"):
        parse_distribution("empirical(sizes.csv)", tmp_path)


def test_a_binary_file_is_refused_as_not_text(tmp_path):
    (tmp_path / "sizes.bin").write_bytes(b"\x00\xff\xfe")
    with pytest.raises(ConfigError, match=r"must be UTF-8 text; got .*not text at byte 1"):
        parse_distribution("empirical(sizes.bin)", tmp_path)


def test_a_bad_value_in_a_file_is_located_but_never_shown(tmp_path):
    # The file could be anyone's: /etc/shadow's second line is a password hash.
    (tmp_path / "secret.csv").write_text("0.01\nroot:$6$secret:19000\n")
    with pytest.raises(ConfigError) as error:
        parse_distribution("empirical(secret.csv)", tmp_path)
    assert "secret.csv' line 2 must hold a number; got something else." in str(error.value)
    assert "$6$" not in str(error.value)


def test_an_empirical_file_is_read_by_lines_with_an_optional_header(tmp_path):
    # A header with a space is one line, not two words; blank lines are skipped.
    (tmp_path / "sizes.csv").write_text("request size,comment\n0.01,a b\n\n0.03\n")
    assert parse_distribution("empirical(sizes.csv)", tmp_path).mean == pytest.approx(0.02)
    (tmp_path / "bad.csv").write_text("size\n0.01\n\noops\n")
    with pytest.raises(ConfigError, match=r"bad.csv' line 4 must hold a number"):
        parse_distribution("empirical(bad.csv)", tmp_path)


def test_a_long_empirical_path_is_shortened_in_its_errors(tmp_path):
    folder = tmp_path / ("a" * 240)
    folder.mkdir()
    (folder / "s.csv").write_text("size\n0.01\nx\n")
    with pytest.raises(ConfigError) as error:
        parse_distribution(f"empirical({folder}/s.csv)", tmp_path)
    assert len(str(error.value)) < 150
