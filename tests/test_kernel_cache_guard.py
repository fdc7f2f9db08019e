"""kernels/__init__.py drops numba's on-disk cache when any kernel source changes: numba keys
a cached kernel on its own file only, so an edit to a file it calls into (moe.py, layout.py)
would otherwise run stale machine code."""
import importlib.util
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_guard(pkg: Path):
    spec = importlib.util.spec_from_file_location("kernels_copy_init", pkg / "__init__.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)       # runs _drop_stale_cache on the copy
    return mod


def test_cache_dropped_when_a_called_into_file_changes(tmp_path, monkeypatch):
    monkeypatch.delenv("SUANLI_KEEP_NUMBA_CACHE", raising=False)
    pkg = tmp_path / "kernels"
    pkg.mkdir()
    for f in ("__init__.py", "layout.py", "moe.py", "training.py"):
        shutil.copy(ROOT / "kernels" / f, pkg / f)
    mod = _load_guard(pkg)
    cached = pkg / "__pycache__" / "training.evaluate.py311.nbi"
    cached.write_bytes(b"x")
    mod._drop_stale_cache()                       # sources unchanged: the cache stays
    assert cached.exists()
    (pkg / "moe.py").write_text((pkg / "moe.py").read_text() + "\n# edited\n")
    mod._drop_stale_cache()                       # a file the training kernels call into changed
    assert not cached.exists()
