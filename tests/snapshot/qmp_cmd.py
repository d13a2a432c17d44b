#!/usr/bin/env python3
"""qmp_cmd.py SOCKET COMMAND [JSON-ARGUMENTS]: one QMP command, for shell tests.

Waits (hang protection only) for the socket to appear, negotiates, sends
COMMAND and prints the reply.  Exit status 0 on a "return", 1 on an
"error" or a lost connection.  Uses the client of tests/qmp/qmp_test.py.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "qmp"))
from qmp_test import Qmp, wait_until  # noqa: E402


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    path, cmd = sys.argv[1], sys.argv[2]
    args = json.loads(sys.argv[3]) if len(sys.argv) == 4 else None
    wait_until("the QMP socket " + path, lambda: os.path.exists(path))
    try:
        q = Qmp(path)
        r = q.cmd(cmd, args)
    except (EOFError, OSError) as e:
        if cmd == "quit":
            return 0
        print("qmp_cmd: %s: %s" % (cmd, e), file=sys.stderr)
        return 1
    print(json.dumps(r))
    return 0 if "return" in r else 1


if __name__ == "__main__":
    sys.exit(main())
