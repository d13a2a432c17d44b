#!/usr/bin/env python3
"""Machine reset against a running VMM: guest resets under --on-reboot, QMP
system_reset on a running and on a stopped SMP guest.

    reset_test.py --vmm build/vmm --guests build/guests --io thread|lock --logs DIR [CASE...]

Cases:
  restart   tests/guests/reboot.c with --on-reboot restart, once per reset
            method (0xCF9, the 8042 pulse, the FADT reset register): at
            least 3 boots, each finding RAM and the AP as at power-on;
            RESET {"guest": true, "reason": "guest-reset"}; still "running".
  exit      the same guest with the default --on-reboot exit: one boot,
            SHUTDOWN {"guest": true, "reason": "guest-reset"}, status 0.
  qmp       snap_counter on 2 vCPUs: system_reset mid-run starts it from
            scratch (RESET {"guest": false, ...}, still "running"); then
            stop + system_reset: reset while stopped, stays "paused" and
            frozen until cont; in the end it finishes with exact counts.

Uses the QMP client of tests/qmp/qmp_test.py.  Waits have generous limits
(hang protection only).  Exit status: 0 when every case passed.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "qmp"))
import qmp_test  # noqa: E402
from qmp_test import Qmp, Vmm, check, wait_until  # noqa: E402

BOOT = re.compile(r"^boot: marker 0x([0-9a-f]+) counter (\d+) cpus (\d+) method (\w+)$", re.M)


def boots(vm):
    text = vm.console()
    return BOOT.findall(text[:text.rfind("\n") + 1])


def check_clean(vm, method):
    text = vm.console()
    check("FAIL" not in text, "the guest failed: %s" % text[text.find("FAIL"):][:200])
    for marker, counter, cpus, m in boots(vm):
        check(marker == "5eed1234" and counter == "0" and cpus == "2" and m == method,
              "a boot found marker 0x%s counter %s cpus %s method %s: not power-on"
              % (marker, counter, cpus, m))


def status(qmp):
    return qmp.ok("query-status")["status"]


def case_restart(t):
    for method in ("cf9", "kbd", "fadt"):
        vm = Vmm(t, "reboot-%s" % method, "reboot", cpus=2, wait=True,
                 extra=("--on-reboot", "restart", "--cmdline", "method=" + method))
        try:
            qmp = Qmp(vm.sock)
            qmp.ok("cont")
            wait_until("3 boots via %s" % method, lambda: len(boots(vm)) >= 3 or
                       vm.proc.poll() is not None)
            check(vm.proc.poll() is None, "the VMM exited (status %s) after %d boots"
                  % (vm.proc.returncode, len(boots(vm))))
            check_clean(vm, method)
            ev = qmp.event("RESET")
            check(ev.get("data") == {"guest": True, "reason": "guest-reset"},
                  "RESET event %r" % ev)
            check(status(qmp) == "running", "query-status %r after resets" % status(qmp))
            n = len(boots(vm))
            qmp.ok("quit")
            rc = vm.wait_exit()
            check(rc == 0, "quit: status %d" % rc)
            check_clean(vm, method)
            resets = vm.stderr().count("back at power-on")
            check(resets >= n - 1, "%d boots but %d resets reported" % (n, resets))
        finally:
            vm.kill()


def case_exit(t):
    vm = Vmm(t, "reboot-exit", "reboot", cpus=2, wait=True, extra=("--cmdline", "method=kbd"))
    try:
        qmp = Qmp(vm.sock)
        qmp.ok("cont")
        ev = qmp.event("SHUTDOWN")
        check(ev.get("data") == {"guest": True, "reason": "guest-reset"},
              "SHUTDOWN event %r" % ev)
        rc = vm.wait_exit()
        check(rc == 0, "--on-reboot exit: status %d, want 0" % rc)
        check(len(boots(vm)) == 1, "%d boots, want 1" % len(boots(vm)))
        check_clean(vm, "kbd")
        check(not any(e["event"] == "RESET" for e in qmp.events), "RESET sent: %r" % qmp.events)
    finally:
        vm.kill()


BANNER = "== snap_counter"
FINAL = "final: pings 4000 pongs 4000 ticks 1500"


def case_qmp(t):
    vm = Vmm(t, "reset-qmp", "snap_counter", cpus=2)
    try:
        qmp = Qmp(vm.sock)
        # 1. Running: back to the start, the run begins again.
        vm.wait_console(r"^progress 500 ")
        check(qmp.ok("system_reset") == {}, "system_reset did not answer {}")
        ev = qmp.event("RESET")
        check(ev.get("data") == {"guest": False, "reason": "host-qmp-system-reset"},
              "RESET event %r" % ev)
        check(status(qmp) == "running", "query-status %r after system_reset" % status(qmp))
        wait_until("a second boot", lambda: vm.console().count(BANNER) >= 2)
        wait_until("progress after the reset",
                   lambda: "progress 500 " in vm.console().split(BANNER)[2])
        check(FINAL not in vm.console().split(BANNER)[1],
              "the first run finished before the reset took effect")
        # 2. Stopped: the reset happens, the VM stays stopped until cont.
        qmp.ok("stop")
        qmp.event("STOP")
        second = vm.console().split(BANNER)[2]
        check(qmp.ok("system_reset") == {}, "system_reset while stopped")
        ev = qmp.event("RESET")
        check(ev.get("data") == {"guest": False, "reason": "host-qmp-system-reset"},
              "RESET event %r" % ev)
        check(status(qmp) == "paused", "query-status %r: a reset must not resume" % status(qmp))
        before = vm.console()
        time.sleep(1)
        check(vm.console() == before, "the guest ran while stopped after system_reset")
        check(before.count(BANNER) == 2, "a third boot before cont")
        qmp.ok("cont")
        qmp.event("RESUME")
        wait_until("a third boot", lambda: vm.console().count(BANNER) >= 3)
        rc = vm.wait_exit()
        third = vm.console().split(BANNER)[3]
        check(rc == 1, "snap_counter: status %d, want 1 (PASS); console: %s" % (rc, third[-300:]))
        progress = re.findall(r"^progress (\d+) ", third, re.M)
        check(progress == [str(500 * i) for i in range(1, 9)],
              "progress after the last reset: %r" % progress)
        check(FINAL in third and "PASS" in third, "no exact final counts: %s" % third[-300:])
        check(FINAL not in second, "the second run finished before stop + system_reset")
        check(vm.stderr().count("back at power-on") == 2, "not exactly 2 resets reported")
    finally:
        vm.kill()


CASES = {"restart": case_restart, "exit": case_exit, "qmp": case_qmp}


if __name__ == "__main__":
    sys.exit(qmp_test.main(CASES, "reset"))
