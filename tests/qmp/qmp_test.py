#!/usr/bin/env python3
"""The QMP control socket against a running VMM and real guests.

    qmp_test.py --vmm build/vmm --guests build/guests --io thread|lock [CASE...]

Every case starts build/vmm with --qmp unix:PATH and a guest kernel from
tests/guests/qmp_*.c, talks to it over the socket as any QMP client would
(newline-delimited JSON, python3 standard library only) and asserts on what
comes back, what the guest prints and how the VMM exits.  Waits have
generous limits: they catch hangs, not slow hosts; nothing asserts on a
duration except "frozen for a second", which only gets easier when slow.

Exit status: 0 when every case passed, 1 otherwise.  Logs (console and
stderr of every VMM run) go to --logs.
"""
import argparse
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

WAIT = 120          # seconds: for anything the guest or the VMM must do
MAX_CLIENTS = 16    # QMP_MAX_CLIENTS in unix/qmp.h
MAX_INPUT = 65536   # QMP_MAX_INPUT

CAPS_FIRST = "Expecting capabilities negotiation with 'qmp_capabilities'"
TOO_LONG = "QMP input exceeds 65536 bytes; closing the connection"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def wait_until(what, fn, timeout=WAIT, step=0.05):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise Failure("timed out after %ds waiting for %s" % (timeout, what))
        time.sleep(step)


class Qmp:
    """A QMP client: replies are returned, events are kept in .events."""

    def __init__(self, path, negotiate=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)      # blocking: a full backlog waits, it does not fail
        self.sock.settimeout(WAIT)
        self.buf = b""
        self.events = []
        self.greeting = self.recv()
        if negotiate:
            r = self.cmd("qmp_capabilities")
            check(r == {"return": {}}, "qmp_capabilities answered %r" % r)

    def recv_line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed by the VMM")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def recv(self):
        return json.loads(self.recv_line())

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        while True:
            msg = self.recv()
            if "event" in msg:
                self.events.append(msg)
                continue
            return msg

    def cmd(self, name, args=None, **extra):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        req.update(extra)
        self.send(json.dumps(req).encode() + b"\n")
        return self.reply()

    def ok(self, name, args=None):
        r = self.cmd(name, args)
        check("return" in r, "%s %r failed: %r" % (name, args, r))
        return r["return"]

    def error(self, name, args=None, cls="GenericError", desc=None, raw=None):
        if raw is not None:
            self.send(raw)
            r = self.reply()
        else:
            r = self.cmd(name, args)
        e = r.get("error")
        check(e is not None, "%s: want an error, got %r" % (raw or name, r))
        check(e.get("class") == cls, "%s: error class %r, want %r" % (raw or name, e, cls))
        if desc is not None:
            check(e.get("desc") == desc, "%s: error %r, want %r" % (raw or name, e.get("desc"), desc))
        return e

    def event(self, name):
        """The first event @name, waiting for it if it has not come yet."""
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name:
                    return self.events.pop(i)
            msg = self.recv()
            check("event" in msg, "unexpected reply while waiting for %s: %r" % (name, msg))
            self.events.append(msg)

    def expect_eof(self):
        try:
            while True:
                msg = self.recv()
                check("event" in msg, "a reply after the end: %r" % msg)
                self.events.append(msg)
        except EOFError:
            return
        except ConnectionResetError:
            return

    def nothing_pending(self):
        """True if nothing has arrived (without waiting)."""
        if self.buf:
            return False
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(1)
            if data:
                self.buf += data
            return False
        except BlockingIOError:
            return True
        finally:
            self.sock.setblocking(True)
            self.sock.settimeout(WAIT)

    def close(self):
        self.sock.close()


class Vmm:
    """One VMM process with a guest, its console in a log, its stderr in another."""

    def __init__(self, t, name, kernel, cpus=1, wait=False, extra=()):
        self.dir = tempfile.mkdtemp(prefix="qmpt.")
        self.sock = os.path.join(self.dir, "qmp.sock")
        self.log = os.path.join(t.logs, "%s-%s.log" % (name, t.io))
        self.errlog = os.path.join(t.logs, "%s-%s.err" % (name, t.io))
        argv = [t.vmm, "--kernel", os.path.join(t.guests, kernel + ".elf"),
                "--cpus", str(cpus), "--mem", "64M", "--io", t.io,
                "--qmp", "unix:" + self.sock] + (["--qmp-wait"] if wait else []) + list(extra)
        self.out = open(self.log, "wb")
        self.err = open(self.errlog, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err)
        wait_until("the socket %s" % self.sock,
                   lambda: os.path.exists(self.sock) or self.proc.poll() is not None)
        check(self.proc.poll() is None, "the VMM exited with status %s before listening; see %s"
              % (self.proc.returncode, self.errlog))

    def console(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace").replace("\r", "")

    def stderr(self):
        with open(self.errlog, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_console(self, pattern):
        def found():
            text = self.console()
            # Complete lines only: the guest may be in the middle of one.
            m = re.search(pattern, text[:text.rfind("\n") + 1], re.M)
            check(m or self.proc.poll() is None,
                  "the VMM exited (status %s) before printing /%s/" % (self.proc.returncode, pattern))
            return m
        return wait_until("/%s/ on the console" % pattern, found)

    def wait_exit(self):
        try:
            return self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            raise Failure("the VMM did not exit within %ds" % WAIT)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        self.err.close()
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)


# ---- qmp_counter: stop, frozen, cont, bad input, exact counts ----

COUNTERS = struct.Struct("<4I16I16I16I")


def read_counters(vm, qmp, addr):
    path = os.path.join(vm.dir, "counters.bin")
    qmp.ok("pmemsave", {"val": addr, "size": COUNTERS.size, "filename": path})
    with open(path, "rb") as f:
        v = COUNTERS.unpack(f.read())
    os.unlink(path)
    check(v[0] == 0x434e5452, "pmemsave read no counters at %#x (magic %#x)" % (addr, v[0]))
    n = v[1]
    return {"ncpus": n, "release": v[2], "shared": v[3], "count": list(v[4:4 + n]),
            "io": list(v[20:20 + n])}


def all_advanced(vm, qmp, addr, since):
    """Wait until every CPU counted past @since: the guest runs, on every vCPU."""
    def advanced():
        c = read_counters(vm, qmp, addr)
        return c if all(now != then for now, then in zip(c["count"], since["count"])) else None
    return wait_until("every vCPU to count on", advanced)


def vcpu_stats(qmp):
    return {v["cpu-index"]: (v["exits"], v["time-ns"]["guest"])
            for v in qmp.ok("x-query-bus-stats")["vcpus"]}


def bad_input(t, vm, qmp):
    """The list of issue 8, each asserted; the guest must keep running."""
    # Broken JSON, and things that are JSON but not requests.
    e = qmp.error(None, raw=b'{"execute": }\n')
    check(e["desc"].startswith("JSON parse error"), "parse error text %r" % e["desc"])
    qmp.error(None, raw=b"not json at all\n")
    qmp.error(None, raw=b"[1, 2]\n", desc="QMP input must be a JSON object")
    qmp.error(None, raw=b'{"arguments": {}}\n', desc="QMP input lacks member 'execute'")
    qmp.error(None, raw=b'{"execute": ["stop"]}\n', desc="QMP input member 'execute' must be a string")
    # Unknown commands.
    qmp.error("x-no-such-command", cls="CommandNotFound",
              desc="The command x-no-such-command has not been found")
    qmp.error("qmp_capabilities", cls="CommandNotFound",
              desc="Capabilities negotiation is already complete, command ignored")
    # Wrong argument types and names.
    qmp.error(None, raw=b'{"execute": "stop", "arguments": [1]}\n',
              desc="QMP input member 'arguments' must be an object")
    qmp.error("inject-nmi", {"foo": 1}, desc="Parameter 'foo' is unexpected")
    qmp.error("x-dump-state", {"cpu-index": "0"},
              desc="Invalid parameter type for 'cpu-index', expected: integer")
    qmp.error("x-dump-state", {"cpu-index": 99})
    qmp.error("x-dump-state", {"format": "xml"})
    qmp.error("human-monitor-command", {}, desc="Parameter 'command-line' is missing")
    qmp.error("human-monitor-command", {"command-line": 5},
              desc="Invalid parameter type for 'command-line', expected: string")
    qmp.error("pmemsave", {"val": -1, "size": 16, "filename": "/dev/null"})
    qmp.error("pmemsave", {"val": 0, "size": 1 << 40, "filename": "/dev/null"})
    # Ids come back as given, on errors too.
    r = qmp.cmd("query-status", id={"tag": [1, "two"]})
    check(r.get("id") == {"tag": [1, "two"]} and r["return"]["running"], "id echo: %r" % r)
    r = qmp.cmd("x-nope", id=7)
    check(r.get("id") == 7 and "error" in r, "id on an error: %r" % r)
    # Two requests in one write without newlines, and one split byte by byte.
    qmp.send(b'{"execute":"query-status","id":1}{"execute":"query-status","id":2}')
    check(qmp.reply().get("id") == 1 and qmp.reply().get("id") == 2, "back-to-back requests")
    for b in b'{"execute": "query-status", "id": "split"}':
        qmp.send(bytes([b]))
    check(qmp.reply().get("id") == "split", "request split into single bytes")

    # Clients that go away mid-command: half a request; a dump (which
    # pauses the VM) or an HMP command whose reply nobody reads.
    for data in (b'{"execute": "query-st',
                 b'{"execute": "qmp_capabilities"}{"execute": "x-dump-state"}',
                 b'{"execute": "qmp_capabilities"}'
                 b'{"execute": "human-monitor-command", "arguments": {"command-line": "info registers -a"}}'):
        c = Qmp(vm.sock, negotiate=False)
        c.send(data)
        c.close()

    # Many clients at once: the main one plus 20 more; 16 fit.
    extra, refused = [], 0
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(vm.sock)
        s.settimeout(WAIT)
        extra.append(s)
    clients = []
    for s in extra:
        c = Qmp.__new__(Qmp)
        c.sock, c.buf, c.events = s, b"", []
        first = c.recv()
        if "QMP" in first:
            clients.append(c)
        else:
            check(first.get("error", {}).get("desc") == "Too many QMP clients",
                  "a client over the limit got %r" % first)
            c.expect_eof()
            refused += 1
    check(len(clients) == MAX_CLIENTS - 1 and refused == 20 - (MAX_CLIENTS - 1),
          "%d clients served, %d refused; want %d and %d" %
          (len(clients), refused, MAX_CLIENTS - 1, 21 - MAX_CLIENTS))
    for c in clients:
        c.send(b'{"execute": "qmp_capabilities"}\n{"execute": "query-status"}\n')
    for c in clients:
        check(c.reply() == {"return": {}}, "qmp_capabilities on a crowded server")
        check(c.reply()["return"]["status"] == "running", "query-status on a crowded server")
        c.close()

    # A 1 MiB line: an error, then the connection closes.
    def connect_when_free():
        try:
            return Qmp(vm.sock)
        except (EOFError, Failure, ConnectionResetError):
            return None
    big = wait_until("a free client slot", connect_when_free)
    payload = b'{"execute": "echo", "arguments": {"s": "' + b"a" * (1 << 20) + b'"}}\n'

    def push():
        try:
            big.sock.sendall(payload)
        except OSError:
            pass   # closed under our feet: expected
    writer = threading.Thread(target=push)
    writer.start()
    e = big.reply().get("error", {})
    check(e.get("desc") == TOO_LONG, "1 MiB line answered %r" % e)
    big.expect_eof()
    writer.join()
    big.close()

    # After all of that: still running.
    check(qmp.ok("query-status") == {"running": True, "status": "running"}, "status after bad input")


def case_counter(t):
    cpus = 2
    vm = Vmm(t, "counter", "qmp_counter", cpus=cpus, wait=True)
    try:
        mode = stat.S_IMODE(os.lstat(vm.sock).st_mode)
        check(stat.S_ISSOCK(os.lstat(vm.sock).st_mode) and mode == 0o600,
              "socket mode %o, want 0600" % mode)
        qmp = Qmp(vm.sock, negotiate=False)
        g = qmp.greeting["QMP"]
        check(set(g["version"]["qemu"]) == {"major", "minor", "micro"} and g["capabilities"] == [],
              "greeting %r" % qmp.greeting)
        qmp.error("query-status", cls="CommandNotFound", desc=CAPS_FIRST)
        check(qmp.cmd("qmp_capabilities") == {"return": {}}, "negotiation")
        quiet = Qmp(vm.sock, negotiate=False)   # never negotiates: gets no events

        # --qmp-wait: nothing has run.
        check(qmp.ok("query-status") == {"running": False, "status": "prelaunch"}, "prelaunch status")
        info = wait_until("every vCPU thread to start",
                          lambda: (lambda i: i if all(c["thread-id"] > 0 for c in i) else None)(
                              qmp.ok("query-cpus-fast")))
        check(len(info) == cpus and all(c["x-exits"] == 0 and c["x-state"] == "paused"
                                        for c in info),
              "before cont the vCPUs must be paused and not have run: %r" % info)
        check(vm.console() == "", "the guest printed before cont: %r" % vm.console())

        check(qmp.ok("cont") == {}, "cont")
        qmp.event("RESUME")
        check(qmp.ok("query-status") == {"running": True, "status": "running"}, "running after cont")
        m = vm.wait_console(r"^counting: counters at 0x([0-9a-f]+), (\d+) cpus$")
        addr = int(m.group(1), 16)
        check(int(m.group(2)) == cpus, "the guest sees %s CPUs" % m.group(2))
        first = read_counters(vm, qmp, addr)
        all_advanced(vm, qmp, addr, first)

        # stop: every vCPU out of the guest, nothing moves for a second.
        check(qmp.ok("stop") == {}, "stop")
        qmp.event("STOP")
        check(qmp.ok("query-status") == {"running": False, "status": "paused"}, "paused status")
        info = qmp.ok("query-cpus-fast")
        check(all(c["x-state"] == "paused" for c in info), "vCPU states when stopped: %r" % info)
        stopped, stats = read_counters(vm, qmp, addr), vcpu_stats(qmp)
        time.sleep(1.0)
        later, stats2 = read_counters(vm, qmp, addr), vcpu_stats(qmp)
        check(stopped == later, "counters moved while stopped: %r -> %r" % (stopped, later))
        check(stats == stats2, "vCPUs exited or ran in the guest while stopped: %r -> %r" % (stats, stats2))
        dump = qmp.ok("x-dump-state")
        check(len(dump["vcpus"]) == cpus and all("rip" in v["regs"] for v in dump["vcpus"]),
              "x-dump-state while stopped")
        check(qmp.ok("stop") == {} and qmp.ok("query-status")["status"] == "paused", "stop twice")

        check(qmp.ok("cont") == {}, "cont")
        qmp.event("RESUME")
        resumed = all_advanced(vm, qmp, addr, stopped)
        check(all(n > s for n, s in zip(resumed["count"], stopped["count"])) or
              any(n < s for n, s in zip(resumed["count"], stopped["count"])),   # 32-bit wrap
              "counters after cont %r, stopped at %r" % (resumed, stopped))
        check(quiet.nothing_pending(), "a client still negotiating got events")
        quiet.close()

        bad_input(t, vm, qmp)
        all_advanced(vm, qmp, addr, read_counters(vm, qmp, addr))

        hmp = qmp.ok("human-monitor-command", {"command-line": "info registers"})
        check("EIP=" in hmp and "CS =0008" in hmp, "info registers: %r" % hmp)
        hmp = qmp.ok("human-monitor-command", {"command-line": "info cpus"})
        check("CPU #0" in hmp and "CPU #1" in hmp, "info cpus: %r" % hmp)
        hmp = qmp.ok("human-monitor-command", {"command-line": "bogus"})
        check(hmp.startswith("unknown command: 'bogus'"), "HMP unknown command: %r" % hmp)
        stats = qmp.ok("x-query-bus-stats")
        buses = {b["name"]: b for b in stats["buses"]}
        check(stats["io-mode"] == t.io and len(stats["vcpus"]) == cpus, "bus stats: %r" % stats)
        check(buses["pio"]["sent"] > 0 and buses["pio"]["latency-ns"]["p50"] > 0,
              "the guest's port writes are not in the stats: %r" % buses["pio"])
        check(all(k in buses for k in ("mmio", "irq", "apic", "timer", "cpu0", "cpu1")),
              "bus list %r" % list(buses))

        # Release the guest: it checks its exact counts and exits.
        check(qmp.ok("inject-nmi") == {}, "inject-nmi")
        ev = qmp.event("SHUTDOWN")
        check(ev["data"] == {"guest": True, "reason": "guest-shutdown"}, "SHUTDOWN %r" % ev)
        qmp.expect_eof()
        status = vm.wait_exit()
        log = vm.console()
        check(status == 1 and "PASS: qmp_counter" in log,
              "VMM status %d, want 1 and PASS; see %s" % (status, vm.log))
        final = {int(c): int(n) for c, n in re.findall(r"^final: cpu (\d+) counted (\d+),", log, re.M)}
        check(len(final) == cpus and all(final[i] >= resumed["count"][i] for i in range(cpus)),
              "final counts %r below what was read while running %r" % (final, resumed["count"]))
        check(not os.path.exists(vm.sock), "the socket is left behind")
    finally:
        vm.kill()


# ---- qmp_regs: a guest parked at known values ----

PATTERNS = {"rax": 0x11111111, "rbx": 0x22222222, "rcx": 0x33333333, "rdx": 0x44444444,
            "rsi": 0x55555555, "rdi": 0x66666666, "rbp": 0x77777777}


def case_regs(t):
    vm = Vmm(t, "regs", "qmp_regs", cpus=2)
    try:
        qmp = Qmp(vm.sock)
        eip = int(vm.wait_console(r"^parked: eip after hlt 0x([0-9a-f]+)$").group(1), 16)

        def halted():
            info = qmp.ok("query-cpus-fast")
            return info if info[0]["x-activity"] == "halted" else None
        info = wait_until("vCPU 0 to halt", halted)
        check(info[1]["x-activity"] == "parked", "vCPU 1 (never started) is %r" % info[1])

        dump = qmp.ok("x-dump-state")
        v0, v1 = dump["vcpus"]
        regs = {k: int(v, 16) for k, v in v0["regs"].items()}
        for k, want in PATTERNS.items():
            check(regs[k] == want, "%s = %#x, want %#x" % (k, regs[k], want))
        check(regs["rip"] == eip, "rip %#x, want %#x (after the hlt)" % (regs["rip"], eip))
        check(not regs["rflags"] & 0x200, "IF set in rflags %#x" % regs["rflags"])
        check(v0["activity"] == "halted" and v0["state"] == "paused", "vCPU 0 %r/%r" %
              (v0["state"], v0["activity"]))
        check(int(v0["debugregs"]["dr0"], 16) == 0xc0ffee, "dr0 %r" % v0["debugregs"])
        check(int(v0["sregs"]["cr0"], 16) & 1 and v0["sregs"]["cs"]["selector"] == 8,
              "protected mode, CS 8: %r" % v0["sregs"])
        msrs = {m["name"]: (int(m["value"], 16), m["source"]) for m in v0["msrs"]}
        check(msrs.get("IA32_SYSENTER_CS") == (0x10, "kvm") and
              msrs.get("IA32_SYSENTER_ESP") == (0xfeedf00d, "kvm") and
              msrs.get("IA32_SYSENTER_EIP") == (0x0badcafe, "kvm"), "SYSENTER MSRs %r" % msrs)
        base, src = msrs.get("IA32_APIC_BASE", (0, None))
        check(src == "lapic" and base == 0xfee00900, "APIC base %#x from %r, want 0xfee00900 "
              "(enabled, BSP) from our LAPIC" % (base, src))
        lapic = v0["lapic"]
        check(int(lapic["tpr"], 16) == 0x20 and int(lapic["svr"], 16) == 0x1ff,
              "LAPIC TPR/SVR %r" % lapic)
        check(lapic["irr"] == [0x40] and lapic["isr"] == [], "LAPIC IRR %r ISR %r, want [64] []" %
              (lapic["irr"], lapic["isr"]))
        check(v1["activity"] == "parked" and int(v1["regs"]["rip"], 16) == 0xfff0 and
              int(v1["lapic"]["id"], 16) == 1 << 24, "the parked AP: %r" % v1["regs"])
        check(all(k in v0 for k in ("fpu", "events", "xcrs", "xsave")), "parts missing: %r" % list(v0))
        check(len(dump["ioapic"]["pins"]) == 24 and len(dump["pic"]["chips"]) == 2 and
              len(dump["pit"]["channels"]) == 3, "device state")
        one = qmp.ok("x-dump-state", {"cpu-index": 1})
        check([v["cpu-index"] for v in one["vcpus"]] == [1], "cpu-index 1 dumped %r" % one["vcpus"])
        text = qmp.ok("x-dump-state", {"format": "text"})
        for s in ("EAX=11111111 EBX=22222222 ECX=33333333 EDX=44444444", "IRR: 0x40",
                  "TPR=00000020", "IA32_APIC_BASE", "ioapic", "pit:"):
            check(s in text, "%r not in the text dump" % s)

        hmp = qmp.ok("human-monitor-command", {"command-line": "info registers"})
        for s in ("EAX=11111111 EBX=22222222 ECX=33333333 EDX=44444444",
                  "ESI=55555555 EDI=66666666 EBP=77777777", "EIP=%08x" % eip, "HLT=1"):
            check(s in hmp, "%r not in info registers: %r" % (s, hmp))
        hmp = qmp.ok("human-monitor-command", {"command-line": "info registers -a"})
        check("CPU#0" in hmp and "CPU#1" in hmp, "info registers -a: %r" % hmp)
        hmp = qmp.ok("human-monitor-command", {"command-line": "info lapic"})
        check("TPR=00000020" in hmp and "IRR: 0x40" in hmp, "info lapic: %r" % hmp)
        hmp = qmp.ok("human-monitor-command", {"command-line": "info lapic", "cpu-index": 1})
        check("LAPIC of vCPU 1" in hmp and "ID=01000000" in hmp, "info lapic on CPU 1: %r" % hmp)

        # SIGUSR1: the same dump on stderr, and the VM runs on.
        vm.proc.send_signal(signal.SIGUSR1)
        wait_until("the SIGUSR1 dump on stderr",
                   lambda: "EAX=11111111" in vm.stderr() and "LAPIC of vCPU 1" in vm.stderr())
        check(qmp.ok("query-status")["status"] == "running", "running after SIGUSR1")

        # A reset (tests/reset/ checks what it does): then quit during the new boot.
        check(qmp.ok("system_reset") == {}, "system_reset")
        ev = qmp.event("RESET")
        check(ev["data"] == {"guest": False, "reason": "host-qmp-system-reset"}, "RESET %r" % ev)
        check(qmp.ok("quit") == {}, "quit")
        ev = qmp.event("SHUTDOWN")
        check(ev["data"] == {"guest": False, "reason": "host-qmp-quit"}, "SHUTDOWN %r" % ev)
        qmp.expect_eof()
        status = vm.wait_exit()
        check(status == 0, "VMM status %d after quit, want 0" % status)
        check(not os.path.exists(vm.sock), "the socket is left behind")
    finally:
        vm.kill()


# ---- qmp_crash: GUEST_PANICKED and the automatic dump ----

def case_crash(t):
    vm = Vmm(t, "crash", "qmp_crash", wait=True)
    try:
        qmp = Qmp(vm.sock)
        check(qmp.ok("cont") == {}, "cont")
        ev = qmp.event("GUEST_PANICKED")
        check(ev["data"]["action"] == "poweroff", "GUEST_PANICKED %r" % ev)
        ev = qmp.event("SHUTDOWN")
        check(ev["data"] == {"guest": True, "reason": "guest-panic"}, "SHUTDOWN %r" % ev)
        qmp.expect_eof()
        status = vm.wait_exit()
        check(status == 4, "VMM status %d after a triple fault, want 4" % status)
        err = vm.stderr()
        for s in ("triple fault", "state of the crashed VM", "=== vCPU 0", "stopped",
                  "LAPIC of vCPU 0", "IDT=     0000000000000000 00000000", "ioapic", "pit:"):
            check(s in err, "%r not in the crash output; see %s" % (s, vm.errlog))
    finally:
        vm.kill()


# ---- SIGTERM while a client waits; command-line errors ----

def case_signal(t):
    vm = Vmm(t, "signal", "hello", wait=True)
    try:
        # Negotiate as QEMU's qemu.qmp library does: no newline, empty
        # arguments, string ids.
        qmp = Qmp(vm.sock, negotiate=False)
        qmp.send(b'{"execute": "qmp_capabilities", "arguments": {}, "id": "__qmp#00000"}')
        check(qmp.reply() == {"return": {}, "id": "__qmp#00000"}, "qemu.qmp-style negotiation")
        qmp.send(b'{"execute": "query-status", "id": "__qmp#00001"}')
        r = qmp.reply()
        check(r.get("id") == "__qmp#00001" and r["return"]["status"] == "prelaunch", "prelaunch %r" % r)
        vm.proc.send_signal(signal.SIGTERM)
        ev = qmp.event("SHUTDOWN")
        check(ev["data"] == {"guest": False, "reason": "host-signal"}, "SHUTDOWN %r" % ev)
        qmp.expect_eof()
        status = vm.wait_exit()
        check(status == 128 + signal.SIGTERM, "VMM status %d on SIGTERM while paused" % status)
        check(vm.console() == "", "the guest ran although nobody said cont")
        check(not os.path.exists(vm.sock), "the socket is left behind")
    finally:
        vm.kill()


def case_cli(t):
    kernel = os.path.join(t.guests, "hello.elf")
    for args, want in ((["--qmp", "tcp:4444"], 2), (["--qmp", "unix:"], 2), (["--qmp-wait"], 2)):
        r = subprocess.run([t.vmm, "--kernel", kernel] + args, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=WAIT)
        check(r.returncode == want, "%s: status %d, want %d" % (args, r.returncode, want))
    with tempfile.TemporaryDirectory(prefix="qmpt.") as d:
        path = os.path.join(d, "file")
        with open(path, "w") as f:
            f.write("keep")
        r = subprocess.run([t.vmm, "--kernel", kernel, "--io", t.io, "--qmp", "unix:" + path],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=WAIT)
        check(r.returncode == 1 and b"not a socket" in r.stderr, "--qmp on a regular file: %d %r" %
              (r.returncode, r.stderr))
        with open(path) as f:
            check(f.read() == "keep", "--qmp replaced a regular file")


CASES = {"cli": case_cli, "counter": case_counter, "regs": case_regs, "crash": case_crash,
         "signal": case_signal}


def main(cases=None, label="qmp"):
    """Run @cases (a name -> function dict; CASES by default) as the command line picks."""
    cases = cases or CASES
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--guests", required=True)
    ap.add_argument("--io", choices=("thread", "lock"), required=True)
    ap.add_argument("--logs", required=True)
    ap.add_argument("cases", nargs="*")
    t = ap.parse_args()
    os.makedirs(t.logs, exist_ok=True)
    failed = 0
    for name in t.cases or list(cases):
        start = time.monotonic()
        try:
            cases[name](t)
            print("PASS %s %s io=%s (%.1fs)" % (label, name, t.io, time.monotonic() - start), flush=True)
        except (Failure, EOFError, OSError, KeyError, ValueError, json.JSONDecodeError) as e:
            failed += 1
            print("FAIL %s %s io=%s: %s: %s; logs in %s" % (label, name, t.io, type(e).__name__, e, t.logs),
                  flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
