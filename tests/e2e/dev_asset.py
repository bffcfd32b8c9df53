"""Seed synth's Lambda asset cache with a dev-profile `bootstrap` (E2E_ASSET=dev in tests/e2e/run).

`synth deploy --endpoint-url` builds the handlers with `cargo lambda build --release` for the host
and caches the zip under `$CARGO_TARGET_DIR/lambda-assets/<arch>/<inputs hash>.zip`, keyed by the
handlers' sources (synth/src/assets.rs `handlers_inputs_hash`, replicated here byte for byte).
A release build of the AWS SDK for the host is a long cold compile; the dev-profile binary
(`cargo build -p handlers`, same sources) runs the same code in the emulator. This writes it into a
*separate* cache directory, so the shared release cache is never filled with a debug build.

Usage: dev_asset.py <repo root> <bootstrap binary> <cache target dir>
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import struct
import sys
import zipfile
from pathlib import Path


def arch_name() -> str:
    return "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


def inputs_hash(root: Path, arch: str) -> str:
    files = [root / "Cargo.toml", root / "Cargo.lock", root / "handlers" / "Cargo.toml"]
    for dirpath, _dirs, names in os.walk(root / "handlers" / "src"):
        files += [Path(dirpath) / n for n in names]
    if (root / "handlers" / "build.rs").exists():
        files.append(root / "handlers" / "build.rs")
    files.sort(key=lambda p: str(p))
    h = hashlib.sha256(arch.encode())
    for f in files:
        rel = str(f.relative_to(root)).encode()
        data = f.read_bytes()
        h.update(struct.pack("<Q", len(rel)) + rel + struct.pack("<Q", len(data)) + data)
    return h.hexdigest()


def main() -> None:
    root, binary, target = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    arch = arch_name()
    out = target / "lambda-assets" / arch / f"{inputs_hash(root, arch)}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, binary.read_bytes())
    out.write_bytes(buffer.getvalue())
    print(out)


if __name__ == "__main__":
    main()
