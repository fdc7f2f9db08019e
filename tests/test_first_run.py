"""The first run after an install (issue 13, item 4): a cold kernel cache is detected cheaply
and announced on stderr with the expected and the real wait; `suanli warmup` compiles ahead."""
import json
import os
import subprocess
import sys

import pytest

from estimator import warm
from estimator.cli import first_run


def test_cold_cache_detected_without_compiling(tmp_path):
    """A fresh numba cache folder reads as cold for every kernel module, in well under a second."""
    code = ("import time; from estimator.warm import cold_kernels; t = time.perf_counter(); "
            "c = cold_kernels(); print(sorted(c), time.perf_counter() - t)")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    names, seconds = r.stdout.rsplit(" ", 1)
    assert names == "['kernels.inference', 'kernels.training']"
    assert float(seconds) < 1.0
    assert not any(f.suffix == ".nbc" for f in tmp_path.rglob("*"))   # nothing was compiled


def test_warm_cache_reads_warm():
    warm.warmup()
    assert warm.cold_kernels() == []
    assert all(os.path.isdir(d) for d in warm.cache_dirs())


def test_entry_kernels_are_the_ones_python_calls():
    import kernels.inference
    import kernels.training
    names = {d.py_func.__name__ for m in (kernels.training, kernels.inference) for d in warm.entry_kernels(m)}
    assert names and all(not n.startswith("train_one") for n in names)


def test_notice_says_compiling_and_the_real_wait(monkeypatch, capsys):
    states = iter([["kernels.training"], []])
    monkeypatch.setattr(warm, "cold_kernels", lambda modules=None: next(states))
    with first_run.compiling(["kernels.training"], announce=True, delay_s=0):
        pass
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith("suanli: compiling the estimator once (about 25 s)")
    assert "suanli warmup" in err[0]
    assert err[1].startswith("suanli: compiled and answered in ")


def test_no_notice_when_warm(monkeypatch, capsys):
    monkeypatch.setattr(warm, "cold_kernels", lambda modules=None: [])
    with first_run.compiling(["kernels.training"], announce=True, delay_s=0):
        pass
    assert capsys.readouterr().err == ""


def test_notice_says_when_the_cache_cannot_be_written(monkeypatch, capsys):
    monkeypatch.setattr(warm, "cold_kernels", lambda modules=None: ["kernels.inference"])
    with first_run.compiling(["kernels.inference"], announce=True, delay_s=0):
        pass
    err = capsys.readouterr().err
    assert "NUMBA_CACHE_DIR" in err and "about 20 s" in err


@pytest.mark.parametrize("args", [["train", "--model", "llama3-8b", "--chip", "h100", "--chips", "8", "--gbs", "8",
                                   "--seq-len", "1024"],
                                  ["infer", "--model", "llama3-8b", "--chip", "h100", "--chips", "1",
                                   "--input-len", "10", "--output-len", "5"]])
def test_commands_announce_a_cold_compile(monkeypatch, capsys, args):
    """Every command that runs a kernel goes through the notice."""
    from estimator.cli.app import main
    seen = []

    def fake(modules=None):
        seen.append(list(modules))
        return []
    monkeypatch.setenv("SUANLI_COMPILE_NOTICE", "1")
    monkeypatch.setattr(warm, "cold_kernels", fake)
    monkeypatch.setattr(sys, "argv", ["suanli", *args])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 0
    assert seen and seen[0] == (["kernels.training"] if args[0] == "train" else ["kernels.inference"])


def test_a_fast_input_error_gets_no_notice(monkeypatch, capsys):
    """An error raised before any kernel compiles (well inside the delay) leaves stderr to the
    error line alone, even with a cold cache and the notice asked for."""
    monkeypatch.setattr(warm, "cold_kernels", lambda modules=None: ["kernels.training"])
    with pytest.raises(ValueError):
        with first_run.compiling(["kernels.training"], announce=True, delay_s=5.0):
            raise ValueError("unknown chip")
    assert capsys.readouterr().err == ""


def test_slow_work_gets_the_notice_after_the_delay(monkeypatch, capsys):
    import time
    states = iter([["kernels.training"], []])
    monkeypatch.setattr(warm, "cold_kernels", lambda modules=None: next(states))
    with first_run.compiling(["kernels.training"], announce=True, delay_s=0.05):
        time.sleep(0.3)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith("suanli: compiling the estimator once")
    assert err[1].startswith("suanli: compiled and answered in ")


@pytest.mark.parametrize("value,tty,expected", [("", False, False), ("", True, True),
                                                ("1", False, True), ("0", True, False)])
def test_notice_only_at_a_terminal_unless_asked(monkeypatch, value, tty, expected):
    monkeypatch.setenv("SUANLI_COMPILE_NOTICE", value)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty, raising=False)
    assert first_run.wants_notice() is expected


def test_warmup_command():
    r = subprocess.run([sys.executable, "-c", "from estimator.cli.app import main; main()", "warmup", "--json"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d["seconds"]) == {"kernels.training", "kernels.inference"} and d["cold_after"] == []
