"""Blob store port: S3 (boto3, any endpoint via AWS_ENDPOINT_URL) or a local directory."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from urllib.parse import urlparse

import orjson


class BlobStore(ABC):
    concurrency = 8  # writes worth running side by side: a network store's round trips overlap
    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None: ...

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""

    @abstractmethod
    def keys(self, prefix: str = "") -> list[str]: ...

    def put_json(self, key: str, document) -> None:
        # compact, keys sorted, by orjson: the store writes one document per issue, and json's encoder
        # costs several times its time (docs/benchmarks.md)
        self.put(key, orjson.dumps(document, option=orjson.OPT_SORT_KEYS))

    def get_json(self, key: str):
        data = self.get(key)
        return None if data is None else json.loads(data)


class FileBlobStore(BlobStore):
    concurrency = 1  # a local write is a few system calls: threads would only add their hand-offs
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._made: set[Path] = set()
        self._count = itertools.count()

    def _path(self, key: str) -> Path:
        """Checked lexically (no realpath per write): relative, no empty, '.' or '..' segments."""
        parts = key.split("/")
        if key.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"blob key escapes the store: {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        path = self._path(key)
        if path.parent not in self._made:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(path.parent)
        # A name no other writer uses (process, thread, count), written then renamed over the key:
        # readers never see half a document. Plain os calls: this runs once per document.
        tmp = f"{path.parent}/.tmp-{os.getpid()}-{threading.get_ident()}-{next(self._count)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:  # the directory was removed behind our back
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def get(self, key: str) -> bytes | None:
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def keys(self, prefix: str = "") -> list[str]:
        if not self.root.exists():
            return []
        found = (str(p.relative_to(self.root)) for p in self.root.rglob("*")
                 if p.is_file() and not p.name.startswith(".tmp-"))
        return sorted(k for k in found if k.startswith(prefix))


class S3BlobStore(BlobStore):
    def __init__(self, bucket: str, prefix: str = "", client=None):
        from shared.extras import require

        require("boto3", "s3", "WCML_BLOB_URL is s3://")  # boto3 comes with the s3 extra
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or boto3.client("s3")

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data,
                               ContentType=content_type)

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def keys(self, prefix: str = "") -> list[str]:
        out = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            out.extend(obj["Key"][len(self.prefix):] for obj in page.get("Contents", []))
        return sorted(out)


def open_blob_store(url: str) -> BlobStore:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileBlobStore(parsed.netloc + parsed.path)
    if parsed.scheme == "s3":
        return S3BlobStore(parsed.netloc, parsed.path)
    raise ValueError(f"unsupported blob URL scheme: {parsed.scheme!r}")
