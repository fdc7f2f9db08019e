from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _no_user_spec_path(monkeypatch):
    """Tests see the built-in catalog only, whatever the caller's environment says."""
    monkeypatch.delenv("SUANLI_SPEC_PATH", raising=False)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA
