"""Network weights for the numpy models: checked arrays, ``.npz`` files, PyTorch checkpoints.

:func:`read_torch_state_dict` reads PyTorch's zip checkpoint format without torch, through an
unpickler that builds nothing but arrays (any other object in the file is refused);
:func:`checked_weights` checks arrays against an architecture's names and shapes, and
:func:`load_weights` reads them from an ``.npz``, a checkpoint or a directory holding one.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from voicepriv.errors import ConfigError

__all__ = ["checked_weights", "load_weights", "read_torch_state_dict"]

FloatArray = npt.NDArray[np.float32]


class _Inert:
    """Stands in for the metadata objects a checkpoint pickles (task specs, versions)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.args = args

    def __setstate__(self, state: object) -> None:
        self.state = state


_STORAGES: Final[Mapping[str, type[np.generic]]] = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "BoolStorage": np.bool_,
}
#: Metadata classes a pyannote checkpoint pickles besides its tensors; read as inert objects.
_INERT: Final = frozenset(
    {
        ("torch.torch_version", "TorchVersion"),
        ("pyannote.audio.core.task", "Specifications"),
        ("pyannote.audio.core.task", "Problem"),
        ("pyannote.audio.core.task", "Resolution"),
    }
)


def _rebuild_tensor(
    storage: npt.NDArray[Any],
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *_rest: object,
) -> npt.NDArray[Any]:
    if not size:
        return storage[offset : offset + 1].reshape(()).copy()
    needed = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1
    if min(size) > 0 and needed > storage.size:
        raise ValueError(f"a tensor of shape {tuple(size)} reaches past its storage")
    view = np.lib.stride_tricks.as_strided(
        storage[offset:],
        shape=tuple(size),
        strides=tuple(s * storage.itemsize for s in stride),
        writeable=False,
    )
    return np.array(view)


def _rebuild_parameter(data: npt.NDArray[Any], *_rest: object) -> npt.NDArray[Any]:
    return data


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles a PyTorch checkpoint into numpy arrays; refuses every other callable."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, root: str, source: str) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._root = root
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        allowed: Mapping[tuple[str, str], Callable[..., Any]] = {
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("collections", "OrderedDict"): collections.OrderedDict,
        }
        if (module, name) in allowed:
            return allowed[(module, name)]
        if module == "torch" and name in _STORAGES:
            return _STORAGES[name]
        if (module, name) in _INERT:
            return type(name, (_Inert,), {})
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid: Any) -> npt.NDArray[Any]:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected storage reference {pid!r}")
        _, dtype, key, _location, count = pid
        if not isinstance(dtype, type) or not issubclass(dtype, np.generic):
            raise pickle.UnpicklingError(f"unexpected storage type {dtype!r}")
        raw = self._archive.read(f"{self._root}data/{key}")
        array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
        if array.size < int(count):
            raise pickle.UnpicklingError(f"storage {key} holds {array.size} of {count} values")
        return array


def read_torch_state_dict(path: str | Path) -> dict[str, npt.NDArray[Any]]:
    """The tensors of a PyTorch checkpoint file as numpy arrays, without torch.

    Reads the zip format ``torch.save`` writes (``archive/data.pkl`` + ``archive/data/N``).
    A Lightning checkpoint's ``state_dict`` entry is taken when there is one. The unpickler
    builds only arrays, ordered dicts and inert stand-ins for pyannote's task metadata;
    anything else in the file (code to run, unknown classes) is refused.

    :raises ConfigError: the file is missing, not a PyTorch zip checkpoint, or holds
        objects other than tensors and known metadata.
    """
    source = str(path)
    try:
        with zipfile.ZipFile(source) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise ConfigError(
                    f"PyTorch checkpoint {source!r}: not a PyTorch zip checkpoint "
                    f"(expected one */data.pkl, found {len(pickles)})"
                )
            root = pickles[0][: -len("data.pkl")]
            unpickler = _ArrayUnpickler(archive.read(pickles[0]), archive, root, source)
            loaded = unpickler.load()
    except ConfigError:
        raise
    except FileNotFoundError as exc:
        raise ConfigError(f"PyTorch checkpoint {source!r}: no such file") from exc
    except (zipfile.BadZipFile, pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
        raise ConfigError(f"PyTorch checkpoint {source!r}: unreadable: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"PyTorch checkpoint {source!r}: cannot read: {exc}") from exc
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise ConfigError(
            f"PyTorch checkpoint {source!r}: expected a state dict, got {type(loaded).__name__}"
        )
    return {str(k): v for k, v in loaded.items() if isinstance(v, np.ndarray)}


# --------------------------------------------------------------------------- checks and files


def checked_weights(
    weights: Mapping[str, npt.ArrayLike],
    expected: Mapping[str, tuple[int, ...]],
    *,
    model: str,
    architecture: str,
    source: str,
) -> dict[str, FloatArray]:
    """The arrays of *expected* from *weights* as float32, after checking every one of them.

    Extra arrays are ignored. Variances (names ending ``running_var``) must not be negative.

    :param model: the model's name for messages (``"campplus model"``).
    :param architecture: what the weights must be (``"CAM++ (80 bands, 192 dims)"``).
    :raises ConfigError: arrays missing, of the wrong shape, not finite floating point, or
        negative variances; all problems named at once (the first six listed).
    """
    problems: list[str] = []
    arrays: dict[str, FloatArray] = {}
    for name, shape in expected.items():
        if name not in weights:
            problems.append(f"{name} is missing")
            continue
        value = np.asarray(weights[name])
        if value.shape != shape:
            problems.append(f"{name} has shape {value.shape}, expected {shape}")
        elif not np.issubdtype(value.dtype, np.floating) or not np.isfinite(value).all():
            problems.append(f"{name} is not finite floating point")
        elif name.endswith("running_var") and (value < 0).any():
            problems.append(f"{name} has negative variances")
        else:
            arrays[name] = value.astype(np.float32)
    if problems:
        raise ConfigError(
            f"{model} {source!r}: not {architecture} weights: "
            + "; ".join(problems[:6])
            + (f" (and {len(problems) - 6} more)" if len(problems) > 6 else "")
        )
    return arrays


def load_weights(
    path: str | Path, *, model: str, names: Sequence[str]
) -> tuple[dict[str, Any], str]:
    """Arrays by name, and where they came from, read from *path*.

    *path* is an ``.npz`` (read without pickles), a PyTorch zip checkpoint (any other
    suffix; :func:`read_torch_state_dict`), or a directory holding one of *names* (the first
    found is read).

    :param model: the model's name for messages.
    :raises ConfigError: nothing at *path*, a directory without any of *names*, or an
        unreadable file.
    """
    where = Path(path)
    if where.is_dir():
        for name in names:
            if (where / name).is_file():
                return load_weights(where / name, model=model, names=names)
        raise ConfigError(f"{model} {str(where)!r}: directory holds none of " + ", ".join(names))
    if not where.is_file():
        raise ConfigError(f"{model} {str(where)!r}: no such file or directory")
    if zipfile.is_zipfile(where) and where.suffix != ".npz":
        return read_torch_state_dict(where), str(where)
    try:
        with where.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}, str(where)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError(f"{model} {str(where)!r}: unreadable: {exc}") from exc
