"""spawn.py - starts N ranks of a program the way torchrun's env:// expects, with a few
lines of Python (torch 1.13's torchrun fails on Python 3.11 before starting any rank):
RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free
MASTER_PORT. Exits with the first failing rank's status, after stopping the others.
    python3 spawn.py N PROGRAM [ARGS...]
"""
import os
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    n = int(sys.argv[1])
    cmd = sys.argv[2:]
    port = free_port()
    procs = []
    for r in range(n):
        env = dict(os.environ, RANK=str(r), WORLD_SIZE=str(n), LOCAL_RANK=str(r),
                   LOCAL_WORLD_SIZE=str(n), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen(cmd, env=env))
    rc = 0
    while any(p.poll() is None for p in procs):
        bad = [p for p in procs if p.poll() not in (None, 0)]
        if bad:
            rc = bad[0].returncode
            time.sleep(2)  # let the others report what they saw
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            break
        time.sleep(0.05)
    for p in procs:
        p.wait()
        if p.returncode != 0 and rc == 0:
            rc = p.returncode
    sys.exit(rc if rc >= 0 else 128 - rc)


if __name__ == "__main__":
    main()
