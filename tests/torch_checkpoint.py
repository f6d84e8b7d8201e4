"""Write PyTorch-format checkpoints without torch (for tests of the torch-free reader)."""

from __future__ import annotations

import io
import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """A stand-in ``torch`` module so that a test can pickle a checkpoint the way torch does."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    FloatStorage.__module__ = "torch"
    FloatStorage.__qualname__ = "FloatStorage"

    def _rebuild_tensor_v2(*args: object) -> None:
        raise AssertionError("never called while pickling")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage = FloatStorage  # type: ignore[attr-defined]
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    torch._utils = utils  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    yield torch


class Storage:
    def __init__(self, key: str, values: np.ndarray) -> None:
        self.key = key
        self.values = values


class Tensor:
    def __init__(self, storage: Storage, shape: tuple[int, ...]) -> None:
        self.storage = storage
        self.shape = shape

    def __reduce__(self) -> tuple[Any, ...]:
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        strides = tuple(int(np.prod(self.shape[i + 1 :])) for i in range(len(self.shape)))
        return (rebuild, (self.storage, 0, self.shape, strides, False, OrderedDict()))


def write_checkpoint(path: Path, payload: object, storages: list[Storage]) -> None:
    """Write *payload* in torch.save's zip layout (``archive/data.pkl`` + ``archive/data/N``)."""
    torch = sys.modules["torch"]

    class _Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            if isinstance(obj, Storage):
                return ("storage", torch.FloatStorage, obj.key, "cpu", obj.values.size)
            return None

    buffer = io.BytesIO()
    _Pickler(buffer, protocol=2).dump(payload)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        for storage in storages:
            archive.writestr(f"archive/data/{storage.key}", storage.values.astype("<f4").tobytes())


def save_state_dict(
    path: Path, arrays: Mapping[str, np.ndarray], *, extra: Mapping[str, object] | None = None
) -> None:
    """Write *arrays* as torch.save would write ``{"state_dict": arrays, **extra}``.

    Needs the :func:`fake_torch` fixture active.
    """
    storages: list[Storage] = []
    state: OrderedDict[str, Tensor] = OrderedDict()
    for index, (name, value) in enumerate(arrays.items()):
        storage = Storage(str(index), np.asarray(value).ravel())
        storages.append(storage)
        state[name] = Tensor(storage, np.asarray(value).shape)
    write_checkpoint(path, {"state_dict": state, **(extra or {})}, storages)
