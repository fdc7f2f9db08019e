import os
from pathlib import Path

import pytest
from hypothesis import settings

DATA = Path(__file__).parent / "data"

# CI replays a fixed set of generated examples (derandomize) so that a landing never depends on
# luck; local runs keep exploring new examples and remember failures in .hypothesis/.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _no_user_spec_path(monkeypatch):
    """Tests see the built-in catalog only, whatever the caller's environment says."""
    monkeypatch.delenv("SUANLI_SPEC_PATH", raising=False)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA
