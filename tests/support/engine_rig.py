"""Extra Docker engines on this machine, for the several-engines tests
(tests/targets/test_engines.py): a second dockerd on its own socket, and an sshd on
a loopback port through which docker-py reaches the local engine over ssh://.

Why a test rig and not .ci/run: the engine-lost test stops an engine in the
middle of a run, so that engine must belong to the test (CI's own engine
serves every other container test). Both are started by a module fixture and
stopped at its end, idempotently: a second dockerd left by a killed run is
found by its pidfile and stopped before a new one starts. A lock file held
from start to close keeps two sessions on this machine (two checkouts, xdist
workers) from sharing or stopping each other's second engine: the later one
waits for it, bounded.

- the second dockerd: its own data root, exec root, pidfile and socket
  (/var/lib/ibgw-docker-2, /run/ibgw-docker-2), `--bridge=none
  --iptables=false --ip6tables=false` like gateway-docker/provision-engine.sh.
  Its images: the base image copied from the first engine (`docker save |
  docker load`), then the mock images built through docker-py
  (`python -m harness.targets.images --docker-host ...`); the data root is
  kept, so a later run finds them up to date in a second;
- the second dockerd also listens on tcp://127.0.0.1:PORT with --tlsverify,
  with a CA, a server and a client certificate made for the test (openssl):
  docker-py reaches it through DOCKER_TLS_VERIFY / DOCKER_CERT_PATH;
- sshd (Debian's openssh-server): a host key and a client key made for the
  test in a temporary directory, root login by key only, listening on
  127.0.0.1 on a free port. docker-py's SSH support (paramiko) reads the key,
  known_hosts and ssh config under $HOME/.ssh: the test points HOME at the
  temporary directory for the run it starts, so nothing in root's own ~/.ssh
  is read or written. The remote side runs `docker system dial-stdio`, which
  talks to the engine DOCKER_HOST names (sshd's SetEnv): the first engine.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.core.config import env as config_env
from harness.targets.container_target import free_port
from tests.support import ROOT

BASE_IMAGE = config_env("IBGW_BASE_IMAGE")
POLL_S = 0.2  # a daemon's start and stop send no event a test could await


def _wait(check, timeout: float, what: str) -> None:
    """Bounded polling for a daemon's readiness."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(POLL_S)
    raise RuntimeError(f"{what} within {timeout:g} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_pid(pid: int, timeout: float = 45.0) -> None:
    """SIGTERM (dockerd stops its containers, then exits), SIGKILL after the timeout."""
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    try:
        _wait(lambda: not _alive(pid) or _reap(pid), timeout, f"pid {pid} did not exit")
    except RuntimeError:
        os.kill(pid, signal.SIGKILL)
        _reap(pid, block=True)


def _reap(pid: int, block: bool = False) -> bool:
    """Collect our own child's exit status (a zombie still answers kill 0)."""
    try:
        done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return not _alive(pid)
    return done == pid


def _try_lock(handle: Any) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def make_tls_certs(directory: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, in
    the file names docker-py's DOCKER_CERT_PATH expects (ca.pem, cert.pem,
    key.pem) plus server-cert.pem / server-key.pem for dockerd."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", *ec, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ibgw-test-ca")
    for name, subject, ext in (
            ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
            ("client", "/CN=ibgw-test-client", "extendedKeyUsage=clientAuth")):
        (directory / f"{name}.ext").write_text(ext + "\n")
        openssl("req", *ec, "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj", subject)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-out", f"{name}-cert.pem", "-days", "2", "-extfile", f"{name}.ext")
    (directory / "cert.pem").write_bytes((directory / "client-cert.pem").read_bytes())
    (directory / "key.pem").write_bytes((directory / "client-key.pem").read_bytes())
    return directory


class Dockerd:
    """A second Docker engine with its own roots and socket (and, given
    certificates, a TLS-verified tcp:// listener on 127.0.0.1)."""

    def __init__(self, name: str = "2", tls_dir: Path | None = None) -> None:
        self.state = Path(f"/var/lib/ibgw-docker-{name}")
        self.run = Path(f"/run/ibgw-docker-{name}")
        self.socket = self.run / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.pidfile = self.run / "dockerd.pid"
        self.log = self.run / "dockerd.log"
        self.pid: int | None = None
        self._lock: Any = None
        self.tls_dir = tls_dir
        self.tls_url = f"tcp://127.0.0.1:{free_port()}" if tls_dir else None

    def _acquire(self, timeout: float = 600.0) -> None:
        """The machine-wide lock on this engine's paths (released by close())."""
        self.run.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.run.with_name(self.run.name + ".lock"), "w")
        try:
            _wait(lambda: _try_lock(self._lock), timeout, f"{self.url} stayed locked by another session")
        except RuntimeError:
            self.close()
            raise

    def close(self) -> None:
        """Stop the engine and let another session have its paths."""
        self.stop()
        if self._lock is not None:
            self._lock.close()  # closing the file releases the flock
            self._lock = None

    def _ping(self) -> bool:
        return subprocess.run(["docker", "-H", self.url, "version", "--format", "{{.Server.Version}}"],
                              capture_output=True, timeout=30).returncode == 0

    def start(self) -> None:
        if self._lock is None:
            self._acquire()
        self._stop_leftover()  # holding the lock: a dockerd on these paths is a killed run's
        self.state.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(
                ["dockerd", "-H", self.url, "--data-root", str(self.state / "data"),
                 "--exec-root", str(self.run / "exec"), "--pidfile", str(self.pidfile),
                 "--bridge=none", "--iptables=false", "--ip6tables=false", *self._tls_args()],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = proc.pid
        try:
            _wait(lambda: proc.poll() is None and self._ping(), 60, f"dockerd {self.url} did not answer")
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"dockerd {self.url} did not come up: {self.log.read_text()[-1500:]}") from None

    def _tls_args(self) -> list[str]:
        if self.tls_dir is None:
            return []
        return ["-H", str(self.tls_url), "--tlsverify", "--tlscacert", str(self.tls_dir / "ca.pem"),
                "--tlscert", str(self.tls_dir / "server-cert.pem"), "--tlskey", str(self.tls_dir / "server-key.pem")]

    def _stop_leftover(self) -> None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        if _alive(pid) and "dockerd" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            _stop_pid(pid)

    def stop(self) -> None:
        """Stop the engine (idempotent): its containers stop with it."""
        if self.pid is not None:
            _stop_pid(self.pid)
            self.pid = None

    @property
    def running(self) -> bool:
        return self.pid is not None and _alive(self.pid)

    def provision_images(self, versions: list[str]) -> None:
        """The base image from the first engine, then the versions' mock images built here."""
        have = subprocess.run(["docker", "-H", self.url, "image", "inspect", BASE_IMAGE], capture_output=True)
        if have.returncode != 0:
            save = subprocess.Popen(["docker", "save", BASE_IMAGE], stdout=subprocess.PIPE)
            load = subprocess.run(["docker", "-H", self.url, "load"], stdin=save.stdout, capture_output=True)
            assert save.stdout is not None
            save.stdout.close()
            if save.wait() != 0 or load.returncode != 0:
                raise RuntimeError(f"copying {BASE_IMAGE} to {self.url} failed: {load.stderr.decode()[-500:]}")
        args = [sys.executable, "-m", "harness.targets.images", "--docker-host", self.url, "--base-image", BASE_IMAGE]
        for version in versions:
            args += ["--only", version]
        built = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=300)
        if built.returncode != 0:
            raise RuntimeError(f"building images on {self.url} failed: {built.stderr[-800:]}")


class Sshd:
    """sshd on a loopback port; root logs in with a key made for the test."""

    def __init__(self, directory: Path, docker_host: str) -> None:
        self.dir = directory
        self.home = directory / "home"  # HOME for docker-py's paramiko: .ssh/{id_ed25519,known_hosts,config}
        self.port = free_port()
        self.url = f"ssh://root@127.0.0.1:{self.port}"
        self.docker_host = docker_host
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        ssh = self.home / ".ssh"
        ssh.mkdir(parents=True, mode=0o700)
        host_key, user_key = self.dir / "host_ed25519", ssh / "id_ed25519"
        for key in (host_key, user_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ibgw-test", "-f", str(key)],
                           check=True, capture_output=True)
        (self.dir / "authorized_keys").write_text(Path(f"{user_key}.pub").read_text())
        (ssh / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {Path(f'{host_key}.pub').read_text()}")
        (ssh / "config").write_text(f"Host 127.0.0.1\n  IdentityFile {user_key}\n")
        config = self.dir / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}", f"PidFile {self.dir / 'sshd.pid'}",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes", "UsePAM no", "StrictModes no", "AllowTcpForwarding no",
            "X11Forwarding no", f"SetEnv DOCKER_HOST={self.docker_host}", ""]))
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "sshd.log", "wb"))
        _wait(self._banner, 20, f"sshd on 127.0.0.1:{self.port} did not answer")

    def _banner(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {(self.dir / 'sshd.log').read_text()[-800:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                return sock.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def missing_tools() -> list[str]:
    """What this machine lacks for the rig (root, dockerd, sshd, ssh-keygen)."""
    missing = [] if os.geteuid() == 0 else ["root (dockerd and sshd)"]
    for tool in ("dockerd", "docker", "ssh-keygen"):
        if not any((Path(d) / tool).exists() for d in os.environ.get("PATH", "").split(":")):
            missing.append(tool)
    if not Path("/usr/sbin/sshd").exists():
        missing.append("sshd (Debian's openssh-server)")
    return missing
