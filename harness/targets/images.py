"""Build the mock Gateway images (one tag per version profile) and the
gnzsnz-shaped stand-in through docker-py.

    python -m harness.targets.images [--base-image IMAGE] [--only VERSION ...] [--docker-host URL ...] [--list]

With several --docker-host URLs (or IBGW_DOCKER_HOSTS) the images are built
on each engine in turn: a version-matrix row may run on any of them.

Why a builder of its own: the build context must hold only the stdlib
packages the images copy (the repository has a multi-hundred-MB .venv), and
an image whose sources and arguments have not changed is not rebuilt (a
source hash label), so CI's provisioning stays fast and idempotent.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..mock.profiles import get_profile
from .base import TargetSpecError
from .docker_engine import EngineUnavailable, engine, engine_url
from .engines import choose_hosts

ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = ROOT / "gateway-docker"
VERSIONS_FILE = DOCKER_DIR / "versions.json"
COPIED = ("harness/__init__.py", "harness/core", "harness/protocol", "harness/mock")
DEFAULT_BASE = "python:3.11-slim"
HASH_LABEL = "ibgw.source-hash"


@dataclass(frozen=True)
class VersionEntry:
    version: str
    build: str
    real_image: str
    mock_profile: str
    mock_image: str


def load_versions(path: Path = VERSIONS_FILE) -> tuple[list[VersionEntry], dict[str, Any]]:
    """The versions file: each Gateway version with its image tags and mock profile; and the stand-in entry."""
    data = json.loads(path.read_text(encoding="utf-8"))
    repo = data.get("mock_image_repo", "ibgw-mock")
    entries = [VersionEntry(v["version"], v["build"], v["real_image"], v["mock_profile"],
                            v.get("mock_image", f"{repo}:{v['version']}")) for v in data["versions"]]
    return entries, data.get("standin", {})


def _context(dockerfile: Path) -> tuple[bytes, str]:
    """A tar build context with the Dockerfile and the copied packages; and their hash."""
    digest = hashlib.sha256()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        files = [dockerfile]
        for rel in COPIED:
            path = ROOT / rel
            files += sorted(p for p in path.rglob("*.py")) if path.is_dir() else [path]
        for path in files:
            arcname = "Dockerfile" if path == dockerfile else str(path.relative_to(ROOT))
            data = path.read_bytes()
            digest.update(arcname.encode() + b"\0" + data)
            info = tarfile.TarInfo(arcname)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), digest.hexdigest()[:16]


def build_image(client: Any, dockerfile: Path, tag: str, buildargs: dict[str, str], *, force: bool = False) -> str:
    """Build one image unless an identical one exists; returns 'built' or 'up to date'."""
    import docker.errors

    context, digest = _context(dockerfile)
    digest = hashlib.sha256((digest + json.dumps(buildargs, sort_keys=True)).encode()).hexdigest()[:16]
    if not force:
        try:
            if (client.images.get(tag).labels or {}).get(HASH_LABEL) == digest:
                return "up to date"
        except docker.errors.ImageNotFound:
            pass
    try:
        client.images.build(fileobj=io.BytesIO(context), custom_context=True, tag=tag, buildargs=buildargs,
                            labels={HASH_LABEL: digest}, rm=True, forcerm=True, network_mode="none")
    except docker.errors.BuildError as exc:
        tail = " | ".join(str(line.get("stream", line.get("error", ""))).strip() for line in exc.build_log)[-400:]
        raise RuntimeError(f"building {tag} failed: {exc.msg}: {tail}") from None
    return "built"


def build_all(base_image: str = DEFAULT_BASE, only: list[str] | None = None, *, force: bool = False,
              standin: bool = True, docker_host: str | None = None) -> list[tuple[str, str, float]]:
    client = engine(docker_host)
    entries, standin_entry = load_versions()
    done = []
    for entry in entries:
        if only and entry.version not in only:
            continue
        t0 = time.monotonic()
        profile = get_profile(entry.mock_profile)
        state = build_image(client, DOCKER_DIR / "mock" / "Dockerfile", entry.mock_image, {
            "BASE_IMAGE": base_image, "PROFILE": profile.name, "GATEWAY_BUILD": entry.build,
            "MAX_SERVER_VERSION": str(profile.max_server_version)}, force=force)
        done.append((entry.mock_image, state, time.monotonic() - t0))
    if standin and standin_entry and not only:
        t0 = time.monotonic()
        profile = get_profile(standin_entry["mock_profile"])
        state = build_image(client, DOCKER_DIR / "ib-gateway-standin" / "Dockerfile", standin_entry["image"], {
            "BASE_IMAGE": base_image, "PROFILE": profile.name, "GATEWAY_BUILD": standin_entry["build"],
            "MAX_SERVER_VERSION": str(profile.max_server_version)}, force=force)
        done.append((standin_entry["image"], state, time.monotonic() - t0))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.targets.images", description=__doc__.split("\n")[0])
    parser.add_argument("--base-image", default=DEFAULT_BASE, help=f"any image with python3 (default {DEFAULT_BASE})")
    parser.add_argument("--only", action="append", help="build only this Gateway version (repeatable)")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument("--list", action="store_true", help="print the versions file and exit")
    parser.add_argument("--docker-host", action="append", metavar="URL",
                        help="build on this engine (repeatable; default IBGW_DOCKER_HOSTS, else the local engine)")
    args = parser.parse_args(argv)
    if args.list:
        entries, standin = load_versions()
        for e in entries:
            print(f"{e.version:7} {e.build:10} {e.mock_image:18} profile {e.mock_profile:7} real {e.real_image}")
        if standin:
            print(f"stand-in {standin['image']} (shaped like {standin.get('shaped_like')})")
        return 0
    try:
        hosts = choose_hosts(args.docker_host) or (None,)
        for host in hosts:
            where = f" on {engine_url(host)}" if len(hosts) > 1 or host else ""
            for tag, state, seconds in build_all(args.base_image, args.only, force=args.force, docker_host=host):
                print(f"{tag}: {state}{where} ({seconds:.1f} s)", flush=True)
    except (EngineUnavailable, RuntimeError, TargetSpecError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
