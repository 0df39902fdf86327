"""The sandbox image, built offline: debootstrap a Debian rootfs, then `docker import` it.

The same rootfs directory serves the bubblewrap backend as its read-only root, so both backends
run the same interpreter and libraries. The Debian mirror is read from the machine's apt sources,
never hard-coded. Run as ``codeloop sandbox build-image`` or ``python -m sandbox.image``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_IMAGE = "codeloop-sandbox:latest"
DEFAULT_ROOTFS = Path("/var/lib/codeloop/sandbox-rootfs")
SANDBOX_UID = 1000
EXTRA_PACKAGES = ("python3-numpy", "python3-pandas")
IMAGE_VERSION = "3"
"""Bump when the recipe changes: --if-missing then rebuilds what an older recipe made."""
UPGRADABLE_VERSIONS = ("2",)
"""Older recipes that differ from this one only by what ``configure_rootfs`` writes: upgraded in place."""
ETC_HOSTS = "127.0.0.1\tlocalhost\n127.0.1.1\tsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n"
"""``localhost`` must resolve without a network (servers on loopback); Docker writes its own over it,
bubblewrap uses this one. ``sandbox`` is the hostname both backends set."""


@dataclass(frozen=True)
class ImageConfig:
    """What to build. ``extras`` are Debian packages layered on the base python3 rootfs."""

    image: str = DEFAULT_IMAGE
    rootfs: Path = DEFAULT_ROOTFS
    suite: str = "bookworm"
    mirror: str | None = None
    """Debian mirror URL; None reads it from /etc/apt/sources.list(.d)."""
    extras: tuple[str, ...] = field(default=EXTRA_PACKAGES)


def apt_mirror(suite: str, etc: Path = Path("/etc/apt")) -> str:
    """The first configured mirror that serves ``suite`` (one-line or deb822 format)."""
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for path in files:
        for line in _read(path).splitlines():
            parts = line.split("#", 1)[0].split()
            if parts[:1] == ["deb"]:
                rest = [p for p in parts[1:] if not p.startswith("[")]
                if len(rest) >= 2 and rest[1] == suite:
                    return rest[0]
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", _read(path)):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, flags=re.M))
            if suite in fields.get("Suites", "").split() and "deb" in fields.get("Types", "").split():
                return fields.get("URIs", "").split()[0]
    raise RuntimeError(f"no apt source for suite {suite!r} in {etc}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _version_file(config: ImageConfig) -> Path:
    return config.rootfs.with_name(config.rootfs.name + ".version")


def rootfs_ready(config: ImageConfig) -> bool:
    version = _read(_version_file(config)).strip()
    return (config.rootfs / "usr/bin/python3").exists() and version == IMAGE_VERSION


def image_ready(config: ImageConfig) -> bool:
    fmt = '{{ index .Config.Labels "codeloop.image-version" }}'
    proc = subprocess.run(["docker", "image", "inspect", "--format", fmt, config.image],
                          capture_output=True, text=True)
    return proc.returncode == 0 and proc.stdout.strip() == IMAGE_VERSION


def docker_answers() -> bool:
    try:
        proc = subprocess.run(["docker", "info"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def build_rootfs(config: ImageConfig) -> None:
    """debootstrap into a temporary folder, add the unprivileged user, then move it in place."""
    mirror = config.mirror or apt_mirror(config.suite)
    tmp = config.rootfs.with_name(config.rootfs.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    include = ",".join(("python3", *config.extras))
    _step(f"debootstrap {config.suite} from {mirror} (+{include})")
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={include}", config.suite, str(tmp), mirror],
        check=True, stdout=subprocess.DEVNULL,
    )
    with open(tmp / "etc/passwd", "a", encoding="utf-8") as f:
        f.write(f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}::/work:/usr/sbin/nologin\n")
    with open(tmp / "etc/group", "a", encoding="utf-8") as f:
        f.write(f"sandbox:x:{SANDBOX_UID}:\n")
    (tmp / "work").mkdir(exist_ok=True)
    (tmp / "work").chmod(0o1777)  # Docker copies this mode onto the tmpfs mounted there
    configure_rootfs(tmp)
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (tmp / junk).glob("*"):
            if item.is_file():
                item.unlink()
    tmp.chmod(0o755)
    shutil.rmtree(config.rootfs, ignore_errors=True)
    tmp.rename(config.rootfs)
    _version_file(config).write_text(IMAGE_VERSION + "\n")


def configure_rootfs(root: Path) -> None:
    """The files a plain Debian rootfs lacks but code under test expects (idempotent): ``/etc/hosts``
    (debootstrap writes none, so ``localhost`` does not resolve) and ``python`` (Debian ships only
    ``python3``; scripts and tests run ``python ...``, as the reference python images allow)."""
    (root / "etc/hosts").write_text(ETC_HOSTS, encoding="utf-8")
    python = root / "usr/bin/python"
    if not python.is_symlink() and not python.exists():
        python.symlink_to("python3")


def upgrade_rootfs(config: ImageConfig) -> bool:
    """Bring a rootfs of an upgradable older recipe to this one in place (no download); True if done."""
    version = _read(_version_file(config)).strip()
    if version not in UPGRADABLE_VERSIONS or not (config.rootfs / "usr/bin/python3").exists():
        return False
    configure_rootfs(config.rootfs)
    _version_file(config).write_text(IMAGE_VERSION + "\n")
    return True


def import_image(config: ImageConfig) -> None:
    """Import the rootfs as a Docker image whose default user is the unprivileged one."""
    _step(f"docker import {config.rootfs} -> {config.image}")
    tar = subprocess.Popen(["tar", "-C", str(config.rootfs), "-c", "."], stdout=subprocess.PIPE)
    changes = [f"USER {SANDBOX_UID}:{SANDBOX_UID}", "WORKDIR /work", 'CMD ["sleep", "infinity"]',
               f"LABEL codeloop.image-version={IMAGE_VERSION}"]
    cmd = ["docker", "import"] + [arg for c in changes for arg in ("-c", c)] + ["-", config.image]
    subprocess.run(cmd, stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL)
    assert tar.stdout is not None
    tar.stdout.close()
    if tar.wait() != 0:
        raise RuntimeError("tar of the rootfs failed")


def build(config: ImageConfig, if_missing: bool = False, docker: bool = True) -> None:
    """Build what is missing (or everything): the rootfs, then the image when Docker answers."""
    if if_missing and upgrade_rootfs(config):
        _step(f"rootfs upgraded in place to version {IMAGE_VERSION}: {config.rootfs}")
    elif not (if_missing and rootfs_ready(config)):
        build_rootfs(config)
    else:
        _step(f"rootfs present: {config.rootfs}")
    if docker and docker_answers():
        if not (if_missing and image_ready(config)):
            import_image(config)
        else:
            _step(f"image present: {config.image}")
    elif docker:
        _step("no Docker daemon answers: image not imported (bwrap can still use the rootfs)")


def _step(message: str) -> None:
    print(f"[sandbox image] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.image", description=__doc__)
    parser.add_argument("--if-missing", action="store_true", help="keep an existing rootfs/image")
    parser.add_argument("--no-extras", action="store_true", help="python3 only (no numpy/pandas)")
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--rootfs", type=Path, default=DEFAULT_ROOTFS)
    args = parser.parse_args(argv)
    config = ImageConfig(image=args.image, rootfs=args.rootfs,
                         extras=() if args.no_extras else EXTRA_PACKAGES)
    build(config, if_missing=args.if_missing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
