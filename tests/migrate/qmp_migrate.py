#!/usr/bin/env python3
"""A QMP client for tests/migrate/run.sh and bench/migrate.sh.

    qmp_migrate.py SOCKET migrate URI [PARAMS-JSON] [--cancel-after-active]
        (--qemu: a QEMU source, MIGRATION events turned on first)
        set the parameters, start the migration, wait (hang protection only)
        for its MIGRATION event to say completed/failed/cancelled; print one
        JSON line: {"events": [...], "info": query-migrate, "status": query-status}
    qmp_migrate.py SOCKET CMD [ARGS-JSON]
        run one command, print its reply
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "qmp"))
import qmp_test  # noqa: E402

WAIT = 600   # seconds: hang protection, never a timing assertion


class Qmp(qmp_test.Qmp):
    """tests/qmp's client, once the socket is there; events waited for stay recorded."""

    def __init__(self, path):
        qmp_test.wait_until("the QMP socket " + path, lambda: os.path.exists(path), timeout=WAIT)
        super().__init__(path)

    def wait_event(self, pred):
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            for e in self.events:
                if pred(e):
                    return e
            self.events.append(self.recv())
        raise TimeoutError("no such event")


def migrate(q, uri, params, cancel, qemu=False):
    if qemu:   # QEMU sends MIGRATION events only when asked to
        q.cmd("migrate-set-capabilities",
              {"capabilities": [{"capability": "events", "state": True}]})
    if params:
        r = q.cmd("migrate-set-parameters", params)
        assert "return" in r, r
    r = q.cmd("migrate", {"uri": uri})
    if "error" in r:
        print(json.dumps({"error": r["error"]}))
        return 1
    done = ("completed", "failed", "cancelled")
    if cancel:
        q.wait_event(lambda e: e["event"] == "MIGRATION" and
                     e["data"]["status"] in ("active",) + done)
        q.cmd("migrate_cancel")
    q.wait_event(lambda e: e["event"] == "MIGRATION" and e["data"]["status"] in done)
    info = q.cmd("query-migrate")["return"]
    status = q.cmd("query-status")["return"]
    # Events after the final status (RESUME comes just before it) are kept too.
    print(json.dumps({"events": [(e["event"], e.get("data", {}).get("status"))
                                 for e in q.events], "info": info, "status": status}))
    return 0


def main():
    path, what = sys.argv[1], sys.argv[2]
    q = Qmp(path)
    if what == "migrate":
        params = json.loads(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else {}
        return migrate(q, sys.argv[3], params, "--cancel-after-active" in sys.argv,
                       "--qemu" in sys.argv)
    args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps(q.cmd(what, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
