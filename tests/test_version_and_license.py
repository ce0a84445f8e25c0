"""The version has one source, `snnp --version` reports it, and the licence file is there."""
import os
import re
import shutil
import subprocess
import sys

import pytest

import snnp
from snnp import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_version_is_the_single_source():
    from snnp._version import __version__
    assert snnp.__version__ == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+([a-z0-9.+-]*)?", __version__)


def test_cli_version_option(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"snnp {snnp.__version__}"


def test_console_script_version(tmp_path):
    exe = shutil.which("snnp")
    cmd = [exe, "--version"] if exe else [sys.executable, "-c",
                                            "import sys; from snnp.cli import main; main(sys.argv[1:])",
                                            "--version"]
    # from outside the repository, whose uncompiled source tree would shadow the installed snnp
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"snnp {snnp.__version__}"


def test_license_is_bsd_3_clause():
    path = os.path.join(ROOT, "LICENSE")
    assert os.path.isfile(path)
    text = open(path, encoding="utf-8").read()
    assert "BSD 3-Clause License" in text
    assert "the snnp developers" in text
    assert "Neither the name of the copyright holder" in text


def test_changelog_latest_release_matches_version():
    text = open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8").read()
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", text, flags=re.M)
    assert released, "CHANGELOG.md has no released version heading"
    # the newest released heading (the first after [Unreleased]) is the package's version
    assert released[0] == snnp.__version__
