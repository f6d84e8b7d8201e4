"""Loading a SpeechBrain pretrained model from a local directory (private helper).

The ``speechbrain`` embedder and the ``sepformer`` source separator share it: the directory
must hold ``hyperparams.yaml`` (nothing is ever downloaded), and a missing ``speechbrain``
extra is a :class:`~voicepriv.errors.MissingExtraError` that says what to install.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from voicepriv.errors import ConfigError, MissingExtraError

__all__ = ["load_pretrained"]


def load_pretrained(source: str | Path, who: str, interface: str) -> tuple[Any, Any, Path]:
    """``(torch, model, folder)``: SpeechBrain's *interface* loaded from *source* on the CPU.

    :param who: the backend, for messages (``"speechbrain embedder"``).
    :param interface: ``"module.Class"`` under ``speechbrain.inference``, e.g.
        ``"speaker.EncoderClassifier"``.
    :raises ConfigError: *source* has no ``hyperparams.yaml``.
    :raises MissingExtraError: torch or speechbrain is not installed.
    """
    folder = Path(source)
    if not (folder / "hyperparams.yaml").is_file():
        raise ConfigError(
            f"{who} option 'source': {str(folder)!r} has no hyperparams.yaml "
            "(expected a local directory in SpeechBrain's pretrained layout)"
        )
    module_name, class_name = interface.rsplit(".", 1)
    try:
        torch = importlib.import_module("torch")
        module = importlib.import_module(f"speechbrain.inference.{module_name}")
    except ImportError as exc:
        raise MissingExtraError(
            f"{who}: install the 'speechbrain' extra "
            "(pip install 'voicepriv[speechbrain]'; torch==2.9.1 + torchaudio==2.9.*)"
        ) from exc
    model = getattr(module, class_name).from_hparams(
        source=str(folder), savedir=str(folder), run_opts={"device": "cpu"}
    )
    model.eval()
    return torch, model, folder
