"""test_torch_backend.py - pytest runs of torch_check.py, the torch.distributed backend
"weft" on every rank (every op against gloo and the exact result, sync and async, the errors,
DDP against gloo), started the ways users start ranks. Each test passes when every rank
exits 0 having printed its "checks passed" line. tests/run-all.sh runs one test per case:
    WEFT_BUILD=build /usr/bin/python3 -m pytest -q tests/python/test_torch_backend.py -k NAME
WEFT_BUILD is the build folder (weft-run and libweft.so); default "build".
"""
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, os.environ.get("WEFT_BUILD", "build"))
CHECK = os.path.join(HERE, "torch_check.py")

pytest.importorskip("torch.distributed")


def ranks_pass(cmd, nranks, timeout=280):
    env = dict(os.environ, WEFT_SO_PATH=os.path.join(BUILD, "lib", "libweft.so"),
               PYTHONPATH=os.path.join(ROOT, "python"), PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    print(p.stdout[-6000:])  # pytest shows it when the test fails
    assert p.returncode == 0, "ranks exited %d" % p.returncode
    # ranks' lines may interleave on one line: find each rank's report anywhere
    passed = {int(r) for r in re.findall(r"rank (\d+): torch_check \(.*?\d+ checks passed",
                                         p.stdout)}
    assert passed == set(range(nranks)), "ranks %s of %d reported their checks" % (
        sorted(passed), nranks)


@pytest.mark.parametrize("nranks", [2, 4])
def test_weft_run(nranks):
    """Ranks from weft-run, the group from init_method="weft://"."""
    ranks_pass([os.path.join(BUILD, "bin", "weft-run"), "-n", str(nranks), sys.executable,
                CHECK, "weft://"], nranks)


def test_env_tcp_file():
    """3 ranks started torchrun-style from Python (env://), then re-inits over tcp:// and
    file://."""
    ranks_pass([sys.executable, os.path.join(HERE, "spawn.py"), "3", sys.executable, CHECK,
                "env://", "tcp://", "file://"], 3)
