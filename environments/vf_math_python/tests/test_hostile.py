"""The hostile-program suite: every program in ``hostile_programs.py`` must fail, with the
audit hook off (the kernel layers alone) and on, as root and as an unprivileged user, and
the host must be as it was afterwards: no file written, no process left, no cgroup left,
no connection received, memory released.

The unprivileged half runs ``hostile_driver.py`` under ``setpriv`` as a uid that owns
nothing, in a private mount namespace where the folders above the interpreter are made
traversable (e.g. pyenv under a 0700 ``/root``): nothing else about the host changes.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from vf_math_python.isolation import detect_isolation

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the programs are shared with hostile_driver.py
from hostile_programs import PROGRAMS, run_all, verdict  # noqa: E402

#: The unprivileged test user: outside the throwaway-uid range, owned by nobody.
TEST_UID = 2_100_000_321
IS_ROOT = os.geteuid() == 0


def shmem_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1])
    return 0


class Host:
    """What the programs attack on the host, and the checks afterwards."""

    def __init__(self, home: str, owner: int | None) -> None:
        self.tag = uuid.uuid4().hex
        self.home = home
        self.secret = os.path.join(home, f"secret-{self.tag}")
        Path(self.secret).write_text("the host's secret")
        os.chmod(self.secret, 0o600)
        self.sock_path = os.path.join(home, f"sock-{self.tag}")
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(self.sock_path)
        self.unix.listen(8)
        self.unix.setblocking(False)
        os.chmod(self.sock_path, 0o777)
        self.tcp = socket.socket(socket.AF_INET)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        self.tcp.setblocking(False)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.tcp.getsockname()[1]))
        self.udp.setblocking(False)
        if owner is not None:
            for path in (home, self.secret, self.sock_path):
                os.chown(path, owner, owner)
        self.marker = subprocess.Popen(["sleep", "600"], start_new_session=True)
        if owner is not None:  # a process of the same user, outside the sandbox
            self.marker.kill()
            self.marker.wait()
            self.marker = subprocess.Popen(["setpriv", f"--reuid={owner}", f"--regid={owner}",
                                            "--clear-groups", "sleep", "600"],
                                           start_new_session=True)
        self.core_pattern = Path("/proc/sys/kernel/core_pattern").read_text()
        self.shmem_kb = shmem_kb()

    @property
    def values(self) -> dict[str, object]:
        return {"TAG": self.tag, "HOME": self.home, "SECRET": self.secret,
                "SOCK": self.sock_path, "PORT": self.tcp.getsockname()[1],
                "HOST_PID": os.getpid(), "MARKER_PID": self.marker.pid}

    def problems(self, results: list[dict]) -> list[str]:
        found = [v for r in results if (v := verdict(_program(r["name"]), r))]
        for r in results:
            if r["pid"] is not None and _alive(r["pid"]):
                found.append(f"{r['name']}: its bwrap process {r['pid']} is still alive")
            left = [p for p in r["cgroup"] if os.path.exists(p)]
            if left:
                found.append(f"{r['name']}: cgroup left behind: {left}")
        import sysconfig

        for folder in ("/tmp", "/dev/shm", "/var/tmp", self.home, "/",
                       sysconfig.get_path("purelib")):
            written = [n for n in os.listdir(folder) if self.tag in n
                       and n not in (os.path.basename(self.secret),
                                     os.path.basename(self.sock_path))]
            if written:
                found.append(f"files written on the host in {folder}: {written}")
        # A connection counts when it carries the run's tag: the machine may be shared, and
        # a stray client of another program could reach a reused port.
        tag = self.tag.encode()
        for name, listener in (("unix", self.unix), ("tcp", self.tcp)):
            while True:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    break
                conn.settimeout(1.0)
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                conn.close()
                if tag in data:
                    found.append(f"the host's {name} listener received data from a sandbox")
        while True:
            try:
                if tag in self.udp.recv(4096):
                    found.append("the host's UDP socket received a datagram from a sandbox")
            except BlockingIOError:
                break
        if self.marker.poll() is not None:
            found.append(f"the host process {self.marker.pid} was killed")
        if Path("/proc/sys/kernel/core_pattern").read_text() != self.core_pattern:
            found.append("the kernel's core_pattern changed")
        # The memory programs tried to hold 2 GB each; the machine may be shared, so only
        # a growth of 1 GB that stays for a few seconds counts.
        for _ in range(10):
            grown = shmem_kb() - self.shmem_kb
            if grown < 1024 * 1024:
                break
            time.sleep(0.5)
        else:
            found.append(f"shared memory grew by {grown // 1024} MB and stayed")
        return found

    def close(self) -> None:
        self.marker.kill()
        self.marker.wait()
        for s in (self.unix, self.tcp, self.udp):
            s.close()
        for path in (self.secret, self.sock_path):
            Path(path).unlink(missing_ok=True)


def _program(name: str):  # type: ignore[no-untyped-def]
    return next(p for p in PROGRAMS if p.name == name)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except OSError:
        return False


def test_there_are_at_least_40_programs():
    assert len(PROGRAMS) >= 40
    assert len({p.name for p in PROGRAMS}) == len(PROGRAMS)


@pytest.mark.skipif(detect_isolation(sys.executable).cgroup is None,
                    reason="needs a writable memory + pids cgroup (root)")
def test_hostile_programs_fail_with_every_layer(sandbox_pids):
    home = tempfile.mkdtemp(prefix=".vf-sandbox-test-", dir=os.path.expanduser("~"))
    host = Host(home, owner=None)
    try:
        results = run_all(host.values, (False, True), "cgroup")
        assert len(results) == 2 * len(PROGRAMS)
        assert all(r["info"]["uid_dropped"] == IS_ROOT for r in results)
        problems = host.problems(results)
        uids = [r["info"]["uid"] for r in results]
        assert not sandbox_pids(uids), "sandbox processes survived"
    finally:
        host.close()
        shutil.rmtree(home, ignore_errors=True)
    assert not problems, "\n".join(problems)


def _closed_ancestors(paths: list[str]) -> dict[str, set[str]]:
    """For each folder on the way to ``paths`` that others cannot enter: its children on
    those ways (to be re-bound under a traversable tmpfs)."""
    closed: dict[str, set[str]] = {}
    for path in paths:
        real = Path(os.path.realpath(path))
        chain = [*reversed(real.parents), real]
        for parent, child in itertools.pairwise(chain):
            if not os.stat(parent).st_mode & 0o001:
                closed.setdefault(str(parent), set()).add(str(child))
                break
    return closed


def unprivileged_command(uid: int, argv: list[str], home: str) -> list[str] | str:
    """The command that runs ``argv`` as ``uid`` (or why it cannot be built here)."""
    needed = [sys.executable, sys.prefix, sys.base_prefix, str(HERE),
              *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    closed = _closed_ancestors([p for p in needed if p and os.path.exists(p)])
    nested = any(child in closed for children in closed.values() for child in children)
    if not os.path.isdir("/mnt") or nested:
        return "cannot make the interpreter's folders reachable for another user here"
    lines = ["set -eu", "mount --make-rprivate /",
             "mount -t tmpfs -o mode=0755,size=1m vf-stash /mnt"]
    for i, (folder, children) in enumerate(sorted(closed.items())):
        for j, child in enumerate(sorted(children)):
            lines += [f"mkdir /mnt/{i}-{j}", f"mount --bind '{child}' /mnt/{i}-{j}"]
        lines.append(f"mount -t tmpfs -o mode=0755,size=1m vf-open '{folder}'")
        for j, child in enumerate(sorted(children)):
            lines += [f"mkdir -p '{child}'", f"mount --bind /mnt/{i}-{j} '{child}'"]
    lines.append('exec "$@"')
    drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "env", f"HOME={home}", f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}"]
    return ["unshare", "--mount", "sh", "-c", "\n".join(lines), "sh", *drop, *argv]


@pytest.mark.skipif(not IS_ROOT, reason="this test drops from root to an unprivileged uid; "
                    "run as an ordinary user, the suite above is the unprivileged one")
def test_hostile_programs_fail_as_an_unprivileged_user():
    if shutil.which("setpriv") is None or shutil.which("unshare") is None:
        pytest.skip("needs setpriv and unshare (util-linux)")
    home = tempfile.mkdtemp(prefix="vf-sandbox-user-")
    os.chmod(home, 0o700)
    host = Host(home, owner=TEST_UID)
    try:
        request = json.dumps({"values": host.values})
        command = unprivileged_command(
            TEST_UID, [sys.executable, str(HERE / "hostile_driver.py"), request], home)
        if isinstance(command, str):
            pytest.skip(command)
        done = subprocess.run(command, capture_output=True, timeout=540, cwd=home)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
        report = json.loads(done.stdout)
        problems = host.problems(report["results"])
    finally:
        host.close()
        shutil.rmtree(home, ignore_errors=True)
    if report["resource_limits"] == "rlimit":
        # No cgroup for this user: the default sandbox refuses, naming the layer and fixes.
        assert report["refusal"].startswith("The python sandbox cannot run here")
        assert "- cgroup: no writable memory + pids cgroup for uid 2100000321" in report["refusal"]
        assert "resource_limits='rlimit'" in report["refusal"]
    infos = [r["info"] for r in report["results"]]
    assert all(i["uid"] == TEST_UID and not i["uid_dropped"] for i in infos)
    assert all("user" in i["namespaces"] for i in infos)
    assert len(report["results"]) == 2 * len(PROGRAMS)
    assert not problems, "\n".join(problems)


def test_host_killed_with_sigkill_leaves_nothing_for_good(tmp_path):
    """A host process killed with ``kill -9`` while its sandbox runs: the sandbox dies with
    it (``--die-with-parent``); its cgroup is reclaimed when the next sandbox starts."""
    script = (
        "import json, sys, time\n"
        "from vf_math_python.sandbox import PythonSandbox, SandboxLimits\n"
        "box = PythonSandbox(SandboxLimits(timeout=60), persistent=True)\n"
        "box.run('x = 1')\n"
        "cg = box.last_cgroup.paths if box.last_cgroup else []\n"
        "print(json.dumps({'pid': box.last_pid, 'cgroup': cg}), flush=True)\n"
        "box.run('import time\\ntime.sleep(50)')\n"
    )
    host = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert host.stdout is not None
        started = json.loads(host.stdout.readline())
        os.kill(host.pid, signal.SIGKILL)
        host.wait(timeout=10)
    finally:
        host.kill()
    deadline = time.monotonic() + 10
    while _alive(started["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(started["pid"]), "the sandbox outlived its host"
    from vf_math_python.sandbox import PythonSandbox, SandboxLimits

    with PythonSandbox(SandboxLimits(timeout=5)) as box:
        assert box.run("1 + 1").value == "2"
    assert not [p for p in started["cgroup"] if os.path.exists(p)], "cgroup not reclaimed"
