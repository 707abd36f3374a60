"""Blob store port: S3 (boto3, any endpoint via AWS_ENDPOINT_URL) or a local directory."""

from __future__ import annotations

import json
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from urllib.parse import urlparse


class BlobStore(ABC):
    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None: ...

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""

    @abstractmethod
    def keys(self, prefix: str = "") -> list[str]: ...

    def put_json(self, key: str, document) -> None:
        self.put(key, json.dumps(document, sort_keys=True, indent=1).encode())

    def get_json(self, key: str):
        data = self.get(key)
        return None if data is None else json.loads(data)


class FileBlobStore(BlobStore):
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._made: set[Path] = set()

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
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except FileNotFoundError:  # the directory was removed behind our back
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)  # readers never see half a document

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def keys(self, prefix: str = "") -> list[str]:
        if not self.root.exists():
            return []
        found = (str(p.relative_to(self.root)) for p in self.root.rglob("*")
                 if p.is_file() and not p.name.startswith(".tmp-"))
        return sorted(k for k in found if k.startswith(prefix))


class S3BlobStore(BlobStore):
    def __init__(self, bucket: str, prefix: str = "", client=None):
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
