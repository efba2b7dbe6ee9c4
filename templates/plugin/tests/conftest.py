"""Makes `marty_msf` importable for the tests.

Where the real framework is installed it is used. Where it is not, tests/standin/ provides a
small STAND-IN of its plugin API (MMFPlugin, PluginMetadata, ServiceDefinition, ...), enough
to run these four checks; it is not the framework. Install marty_msf to test against the real
thing.
"""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USING_STANDIN = importlib.util.find_spec("marty_msf") is None
if USING_STANDIN:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "standin"))


def pytest_report_header(config):
    if USING_STANDIN:
        return "marty_msf: not installed, using the STAND-IN in tests/standin/"
    return "marty_msf: installed"
