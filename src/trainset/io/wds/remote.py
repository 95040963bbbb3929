"""A ``-wds`` folder in an object store (``s3://...``), streamed shard by shard through fsspec.

A shard is trusted only once its size and sha256 match ``index.json`` (the trust root), so a
remote shard is streamed into a temporary local file first, hashed there, and walked like a
local shard only when it matched: no sample of a tampered shard is ever yielded. One shard at a
time is held on local disk (each DataLoader worker holds its own), and the file is removed
when the walk ends. ``index.json`` and ``splits.json`` are read through fsspec with the same
checks as locally; a ``splits.json`` beside the folder is not looked for.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from trainset.errors import TrainsetError
from trainset.io.base import Splits
from trainset.io.wds.index import INDEX, REWRITE, SPLITS_FILE, read_index
from trainset.io.wds.members import shard_file_problem
from trainset.io.wds.read import WdsSource
from trainset.splits import read_splits


class RemoteWdsSource(WdsSource):
    """:class:`WdsSource` of the folder at fsspec URL ``url`` (``inner``: its path in ``fs``)."""

    def __init__(self, url: str, fs: Any, inner: str, verify: bool = True) -> None:
        super().__init__(url, verify)
        self.path: Any = url.rstrip("/")
        self._fs, self._inner = fs, inner.rstrip("/")

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "verify": self.verify, "fs": self._fs, "inner": self._inner}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["fs"], state["inner"], state["verify"])

    def _fetch(self, name: str) -> bytes:
        try:
            return self._fs.cat_file(f"{self._inner}/{name}")
        except OSError as error:
            raise TrainsetError(f"{self.path}/{name}: missing or unreadable ({error}). {REWRITE}") from error

    @property
    def meta(self) -> dict[str, Any]:
        import os

        if self._meta is None or self._pid != os.getpid():
            meta = read_index(self.path, text=self._fetch(INDEX))
            self._meta, self._pid, self._verified, self._splits = meta, os.getpid(), {}, {}
        return self._meta

    @property
    def splits(self) -> Splits | None:
        self.meta  # noqa: B018 - (re)reads index.json, resetting the caches after a fork
        if "stored" not in self._splits:
            there = self._fs.isfile(f"{self._inner}/{SPLITS_FILE}")
            self._splits["stored"] = read_splits(f"{self.path}/{SPLITS_FILE}", n=len(self),
                                                 text=self._fetch(SPLITS_FILE)) if there else None
        return self._splits["stored"]

    def _beside_splits(self) -> Splits:
        return {}

    def _named(self, rec: dict[str, Any]) -> Any:
        return f"{self.path}/{rec['file']}"

    @contextmanager
    def _shard_file(self, shard: int, rec: dict[str, Any]) -> Iterator[Path]:
        """The shard copied to a temporary file and checked against index.json before any read."""
        with tempfile.TemporaryDirectory(prefix="trainset-shard-") as folder:
            local = Path(folder) / "shard.tar"
            try:
                self._fs.get_file(f"{self._inner}/{rec['file']}", str(local))
            except OSError as error:
                raise TrainsetError(f"{self._named(rec)}: shard missing or unreadable ({error}). {REWRITE}") from error
            problem = shard_file_problem(local, rec)  # always: the download is what is trusted
            if problem:
                raise TrainsetError(f"{self._named(rec)}: {problem}. {REWRITE}")
            yield local
