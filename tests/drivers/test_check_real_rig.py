"""``bmsrig check`` on the shipped real-rig example: validates it as "hardware", touches nothing.

The CLI runs in a fresh interpreter in which opening a socket, opening a VISA resource
manager or importing nidaqmx fails loudly, so the check provably reads the description only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "rig" / "envs" / "example-real-rig.yaml"

GUARDED_CHECK = r"""
import importlib.abc, socket, sys

class NoNidaqmx(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "nidaqmx" or name.startswith("nidaqmx."):
            raise ImportError("bmsrig check imported nidaqmx")
        return None

sys.meta_path.insert(0, NoNidaqmx())

def no_network(*args, **kwargs):
    raise AssertionError(f"bmsrig check touched the network: {args}")

socket.socket.connect = socket.socket.connect_ex = no_network
socket.create_connection = no_network

import pyvisa

class NoVisa:
    def __init__(self, *args, **kwargs):
        raise AssertionError("bmsrig check opened a VISA resource manager")

pyvisa.ResourceManager = NoVisa

from rig.cli import main
sys.exit(main(["check", "--rig", sys.argv[1]]))
"""


def test_check_reports_the_example_real_rig_as_hardware_without_touching_it():
    proc = subprocess.run([sys.executable, "-c", GUARDED_CHECK, str(EXAMPLE)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"rig description {EXAMPLE}: OK (hardware)" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_check_env_kind_in_process():
    from rig.check import check_env

    assert check_env(EXAMPLE) == "hardware"
