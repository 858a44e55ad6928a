#!/usr/bin/env python3
"""Runs one command at a dpdk-testpmd interactive prompt whose stdin is a fifo
and whose output goes to a log file, and prints the command's output.

usage: tpctl.py FIFO LOG COMMAND [TIMEOUT_S]
Exit status 1 if the prompt does not come back within TIMEOUT_S (default 15)."""
import os
import sys
import time

PROMPT = "testpmd> "


def run(fifo, log, command, timeout=15.0):
    """Sends `command`; returns its output (None on timeout)."""
    start = os.path.getsize(log)
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, (command + "\n").encode())
    finally:
        os.close(fd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log, "rb") as f:
            f.seek(start)
            new = f.read().decode(errors="replace")
        # testpmd echoes the line, prints the output, then a fresh prompt.
        if "\n" in new and new.endswith(PROMPT):
            return new[: -len(PROMPT)]
        time.sleep(0.005)
    return None


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    out = run(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 15.0)
    if out is None:
        sys.exit(f"tpctl: testpmd did not answer {sys.argv[3]!r} within the timeout (log: {sys.argv[2]})")
    sys.stdout.write(out)


if __name__ == "__main__":
    main()
