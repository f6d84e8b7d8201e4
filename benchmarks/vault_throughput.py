"""Vault throughput: streamed encrypt+write and read+decrypt vs raw AES-256-GCM on one buffer.

The baseline seals the whole artifact as one buffer with ``cryptography``'s AESGCM (no I/O, the
upper bound of what one core does). The vault path streams the same number of bytes through
``Vault.put_artifact`` (STREAM chunks, written atomically to a local replica) and back through
``Vault.open_artifact``; it runs in a child process so its peak RSS is its own.

    python benchmarks/vault_throughput.py [--quick] [--json PATH]

Metrics: ``encrypt_write_ratio`` and ``read_decrypt_ratio`` (vault throughput / raw AES-GCM
throughput; target >= 0.7), ``peak_rss_mib`` (the child's whole peak resident memory, imports
included; target < 64), ``rss_after_imports_mib`` (the child before it streams anything) and
``stream_rss_growth_mib`` (what streaming the artifact added: flat whatever the size).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NAME = "vault_throughput"
BLOCK = 1 << 20


def _blocks(total: int) -> Iterator[bytes]:
    base = bytearray(os.urandom(BLOCK))
    for index in range(total // BLOCK):
        base[:8] = index.to_bytes(8, "big")
        yield bytes(base)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(size: int, folder: str, repeat: int) -> dict[str, float]:
    """The streamed vault path (runs in its own process); best of *repeat* runs."""
    from voicepriv import model
    from voicepriv.vault import Vault

    rss_before = _peak_rss_mib()
    with Vault.create(Path(folder) / "vault") as vault:
        recording = model.Recording(
            id="bench-1",
            started_at=datetime(2026, 1, 1, tzinfo=UTC),
            duration=3600,
            direction="inbound",
            parties=[{"role": "agent"}],
        )
        vault.add_recording(recording, delete_after=None)
        write_s = read_s = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            result = vault.put_artifact("bench-1", "full_audio", _blocks(size))
            write_s = min(write_s, time.perf_counter() - start)
            start = time.perf_counter()
            seen = 0
            with vault.open_artifact(result.artifact_id) as reader:
                for chunk in reader.iter_chunks():
                    seen += len(chunk)
            read_s = min(read_s, time.perf_counter() - start)
            assert seen == size, (seen, size)
            vault.storages["local"].delete(vault.catalog.replicas(result.artifact_id)[0].object_key)
    return {
        "write_s": write_s,
        "read_s": read_s,
        "peak_rss_mib": _peak_rss_mib(),
        "rss_after_imports_mib": rss_before,
    }


def baseline(size: int, repeat: int) -> dict[str, float]:
    """Raw AES-256-GCM on one buffer of *size* bytes; best of *repeat* runs."""
    buffer = b"".join(_blocks(size))
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    nonce = os.urandom(12)
    encrypt_s = decrypt_s = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        sealed = aead.encrypt(nonce, buffer, None)
        encrypt_s = min(encrypt_s, time.perf_counter() - start)
        start = time.perf_counter()
        aead.decrypt(nonce, sealed, None)
        decrypt_s = min(decrypt_s, time.perf_counter() - start)
        del sealed
    return {"encrypt_s": encrypt_s, "decrypt_s": decrypt_s}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table; write JSON when asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 MiB instead of 1 GiB")
    parser.add_argument("--json", type=Path, help="write results here")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.folder, args.repeat)))
        return 0
    size = (256 << 20) if args.quick else (1 << 30)
    gib = size / (1 << 30)
    with tempfile.TemporaryDirectory(prefix="vpv-bench-") as folder:
        run = subprocess.run(
            [
                sys.executable,
                __file__,
                *("--child", str(size), "--folder", folder, "--repeat", str(args.repeat)),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    streamed = json.loads(run.stdout.strip().splitlines()[-1])
    raw = baseline(size, args.repeat)
    rows = [
        {
            "system": "raw_aes256gcm_one_buffer",
            "encrypt_gib_s": gib / raw["encrypt_s"],
            "decrypt_gib_s": gib / raw["decrypt_s"],
        },
        {
            "system": "vault_stream_file",
            "encrypt_gib_s": gib / streamed["write_s"],
            "decrypt_gib_s": gib / streamed["read_s"],
            "encrypt_write_ratio": raw["encrypt_s"] / streamed["write_s"],
            "read_decrypt_ratio": raw["decrypt_s"] / streamed["read_s"],
            "peak_rss_mib": streamed["peak_rss_mib"],
            "rss_after_imports_mib": streamed["rss_after_imports_mib"],
            "stream_rss_growth_mib": streamed["peak_rss_mib"] - streamed["rss_after_imports_mib"],
        },
    ]
    print(f"{NAME}: {size >> 20} MiB artifact, chunk 256 KiB, one local replica")
    print(
        f"{'system':<26} {'enc GiB/s':>10} {'dec GiB/s':>10} {'enc ratio':>10} "
        f"{'dec ratio':>10} {'peak MiB':>9} {'growth MiB':>10}"
    )
    for row in rows:
        print(
            f"{row['system']:<26} {row['encrypt_gib_s']:>10.2f} {row['decrypt_gib_s']:>10.2f} "
            f"{row.get('encrypt_write_ratio', 1.0):>10.2f} "
            f"{row.get('read_decrypt_ratio', 1.0):>10.2f} "
            f"{row.get('peak_rss_mib', float('nan')):>9.1f} "
            f"{row.get('stream_rss_growth_mib', float('nan')):>10.1f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": NAME,
                    "params": {"size_bytes": size, "quick": args.quick, "repeat": args.repeat},
                    "results": rows,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
