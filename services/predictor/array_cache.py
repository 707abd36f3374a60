"""Arrays computed from texts (embeddings, an encoder's lower-layer states), cached by content key.

In memory, the ``keep`` most recently used (cross-validation and the final fit re-read every training
text; a long-running predictor must not grow without bound); on disk too when
``WCML_EMBEDDING_CACHE`` names a directory (``shared.settings.embedding_cache_dir``), so a text is
encoded once across runs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from shared.settings import embedding_cache_dir


class ArrayCache:
    def __init__(self, subdir: str, keep: int):
        self.subdir = subdir
        self.keep = keep
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()

    def _path(self, key: str) -> Path | None:
        root = embedding_cache_dir()
        return root / self.subdir / key[:2] / f"{key}.npy" if root is not None else None

    def get(self, keys: Sequence[str], texts: Sequence[str],
            compute: Callable[[list[str]], Sequence[np.ndarray]]) -> list[np.ndarray]:
        """The array for each (key, text); ``compute`` gets the texts found nowhere, each once."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for key in keys:
                if key in self._memory:
                    self._memory.move_to_end(key)
                    found[key] = self._memory[key]
        for key in set(keys) - set(found):
            path = self._path(key)
            if path is not None and path.is_file():
                found[key] = np.load(path)
        missing = list(dict.fromkeys(key for key in keys if key not in found))
        if missing:
            text_of = dict(zip(keys, texts, strict=True))
            for key, array in zip(missing, compute([text_of[key] for key in missing]), strict=True):
                found[key] = array
                path = self._path(key)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    np.save(path, array)
        with self._lock:
            for key in keys:
                self._memory[key] = found[key]
                self._memory.move_to_end(key)
            while len(self._memory) > self.keep:
                self._memory.popitem(last=False)
        return [found[key] for key in keys]
