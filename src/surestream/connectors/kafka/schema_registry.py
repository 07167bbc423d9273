"""Schema registries: a folder of subjects and versions (the default), or a
Confluent-compatible registry over HTTP where a URL is given (``open_registry``).

Both behave as Confluent Schema Registry does, so moving from the local folder to a shared
registry changes nothing for producers:

- a *subject* (e.g. ``raw-events-value``) holds numbered versions 1, 2, ...; a schema has a
  global *id*, the same for the same schema in any subject;
- registering a schema the subject already holds returns that version (idempotent);
- registering a new one is checked against the subject's compatibility level (its own, else
  the registry's, ``BACKWARD`` by default: ``compatibility.py``) and refused with
  ``IncompatibleSchemaError`` naming every reason.

The folder's layout (JSON files, each written atomically; one writer at a time by an
advisory lock on ``.lock``)::

    <root>/config.json                          {"compatibility": "BACKWARD"}
    <root>/schemas/<id>.json                    {"schemaType": "AVRO", "schema": "..."}
    <root>/subjects/<subject>/config.json       {"compatibility": ...}   (optional)
    <root>/subjects/<subject>/versions/<n>.json {"id": 3}

Subject names are percent-encoded in paths (a subject may hold ``/``).
"""

from __future__ import annotations

import fcntl
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from surestream.connectors.kafka.compatibility import (
    CompatibilityLevel,
    compatibility_problems,
    parse_schema,
)
from surestream.io.durable import fsync_dir, write_atomic

#: where a registry is found when none is named: a URL or a folder
REGISTRY_ENV = "SURESTREAM_SCHEMA_REGISTRY"
DEFAULT_LEVEL = CompatibilityLevel.BACKWARD


class SchemaRegistryError(Exception):
    """The registry cannot be read or written, or refused a request."""


class IncompatibleSchemaError(SchemaRegistryError):
    """The schema breaks the subject's compatibility level; ``reasons`` says how."""

    def __init__(self, subject: str, level: str, reasons: list[str]) -> None:
        self.subject, self.level, self.reasons = subject, level, reasons
        super().__init__(f"subject {subject!r}: the schema is not {level} compatible: "
                         + "; ".join(reasons))


@dataclass(frozen=True)
class RegisteredSchema:
    subject: str
    version: int
    id: int
    schema_type: str
    schema: str


class SchemaRegistry(Protocol):
    def register(self, subject: str, schema: str | dict[str, Any],
                 schema_type: str = "AVRO") -> RegisteredSchema: ...
    def check(self, subject: str, schema: str | dict[str, Any],
              schema_type: str = "AVRO") -> list[str]: ...
    def latest(self, subject: str) -> RegisteredSchema | None: ...
    def get(self, subject: str, version: int) -> RegisteredSchema: ...
    def versions(self, subject: str) -> list[int]: ...
    def subjects(self) -> list[str]: ...
    def compatibility(self, subject: str | None = None) -> CompatibilityLevel: ...
    def set_compatibility(self, level: CompatibilityLevel | str,
                          subject: str | None = None) -> None: ...


def canonical(schema: str | dict[str, Any]) -> str:
    """One text per schema whatever its whitespace or key order (what ids are given to)."""
    doc = json.loads(schema) if isinstance(schema, str) else schema
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


class FileSchemaRegistry:
    """A schema registry in a local folder (layout in the module's docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- reading ----------------------------------------------------------------------------
    def _subject_dir(self, subject: str) -> Path:
        return self.root / "subjects" / urllib.parse.quote(subject, safe="")

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise SchemaRegistryError(f"schema registry {self.root}: cannot read {path}: "
                                      f"{e}") from e

    def subjects(self) -> list[str]:
        folder = self.root / "subjects"
        return sorted(urllib.parse.unquote(p.name) for p in folder.iterdir()
                      if p.is_dir()) if folder.is_dir() else []

    def versions(self, subject: str) -> list[int]:
        folder = self._subject_dir(subject) / "versions"
        return sorted(int(p.stem) for p in folder.glob("*.json")) if folder.is_dir() else []

    def get(self, subject: str, version: int) -> RegisteredSchema:
        path = self._subject_dir(subject) / "versions" / f"{version}.json"
        if not path.exists():
            raise SchemaRegistryError(f"subject {subject!r} has no version {version} "
                                      f"(versions: {self.versions(subject) or 'none'})")
        schema_id = int(self._read(path)["id"])
        stored = self._read(self.root / "schemas" / f"{schema_id}.json")
        return RegisteredSchema(subject, version, schema_id, stored["schemaType"],
                                stored["schema"])

    def latest(self, subject: str) -> RegisteredSchema | None:
        versions = self.versions(subject)
        return self.get(subject, versions[-1]) if versions else None

    def compatibility(self, subject: str | None = None) -> CompatibilityLevel:
        for folder in ([self._subject_dir(subject)] if subject else []) + [self.root]:
            if (folder / "config.json").exists():
                return CompatibilityLevel(self._read(folder / "config.json")["compatibility"])
        return DEFAULT_LEVEL

    def check(self, subject: str, schema: str | dict[str, Any],
              schema_type: str = "AVRO") -> list[str]:
        """Why ``schema`` could not be registered under ``subject`` now ([] if it could)."""
        earlier = [self.get(subject, v) for v in self.versions(subject)]
        if any(e.schema_type != schema_type for e in earlier):
            return [f"subject {subject!r} holds {earlier[-1].schema_type} schemas, not "
                    f"{schema_type}"]
        return compatibility_problems(schema, [(e.version, e.schema) for e in earlier],
                                      schema_type, self.compatibility(subject))

    # -- writing ----------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _write(self, path: Path, doc: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(doc, indent=1).encode())
        fsync_dir(path.parent)

    def _schema_id(self, text: str, schema_type: str) -> int:
        """The id of this schema text, given a new one if no subject holds it yet."""
        folder = self.root / "schemas"
        known = sorted(int(p.stem) for p in folder.glob("*.json")) if folder.is_dir() else []
        for schema_id in known:
            stored = self._read(folder / f"{schema_id}.json")
            if stored["schema"] == text and stored["schemaType"] == schema_type:
                return schema_id
        schema_id = (known[-1] if known else 0) + 1
        self._write(folder / f"{schema_id}.json", {"schemaType": schema_type, "schema": text})
        return schema_id

    def register(self, subject: str, schema: str | dict[str, Any],
                 schema_type: str = "AVRO") -> RegisteredSchema:
        """Register ``schema`` under ``subject``: its existing version if the subject holds
        it already, else a new version once it passes the compatibility check."""
        parse_schema(schema, schema_type)
        text = canonical(schema)
        with self._locked():
            for version in self.versions(subject):
                existing = self.get(subject, version)
                if existing.schema == text and existing.schema_type == schema_type:
                    return existing
            reasons = self.check(subject, text, schema_type)
            if reasons:
                raise IncompatibleSchemaError(subject, self.compatibility(subject).value,
                                              reasons)
            schema_id = self._schema_id(text, schema_type)
            version = (self.versions(subject) or [0])[-1] + 1
            self._write(self._subject_dir(subject) / "versions" / f"{version}.json",
                        {"id": schema_id})
        return RegisteredSchema(subject, version, schema_id, schema_type, text)

    def set_compatibility(self, level: CompatibilityLevel | str,
                          subject: str | None = None) -> None:
        level = CompatibilityLevel(level)
        with self._locked():
            folder = self._subject_dir(subject) if subject else self.root
            self._write(folder / "config.json", {"compatibility": level.value})


class HttpSchemaRegistry:
    """A Confluent-compatible schema registry at ``url`` (its REST API, plain ``urllib``).

    The registry itself checks compatibility on registration; a refusal (HTTP 409) is
    raised as ``IncompatibleSchemaError`` with the registry's own reasons (asked for then
    with ``verbose=true``, since a 409 alone says little)."""

    CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url, self.timeout_s = url.rstrip("/"), timeout_s

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": self.CONTENT_TYPE,
                                                  "Accept": self.CONTENT_TYPE})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                detail = json.loads(e.read())
            except ValueError:
                detail = {"error_code": e.code, "message": e.reason}
            raise _HttpRefusal(e.code, detail) from e
        except (urllib.error.URLError, OSError) as e:
            raise SchemaRegistryError(f"schema registry {self.url} cannot be reached: "
                                      f"{e}; check the URL or use a local folder") from e

    @staticmethod
    def _subject(subject: str) -> str:
        return urllib.parse.quote(subject, safe="")

    @staticmethod
    def _body(schema: str | dict[str, Any], schema_type: str) -> dict[str, Any]:
        body: dict[str, Any] = {"schema": canonical(schema)}
        if schema_type != "AVRO":
            body["schemaType"] = schema_type
        return body

    def _registered(self, subject: str, doc: dict[str, Any]) -> RegisteredSchema:
        return RegisteredSchema(subject, int(doc["version"]), int(doc["id"]),
                                doc.get("schemaType", "AVRO"), doc["schema"])

    def subjects(self) -> list[str]:
        return sorted(self._call("GET", "/subjects"))

    def versions(self, subject: str) -> list[int]:
        try:
            return sorted(self._call("GET", f"/subjects/{self._subject(subject)}/versions"))
        except _HttpRefusal as e:
            if e.status == 404:
                return []
            raise

    def get(self, subject: str, version: int) -> RegisteredSchema:
        return self._registered(subject, self._call(
            "GET", f"/subjects/{self._subject(subject)}/versions/{version}"))

    def latest(self, subject: str) -> RegisteredSchema | None:
        try:
            return self.get(subject, "latest")  # type: ignore[arg-type]
        except _HttpRefusal as e:
            if e.status == 404:
                return None
            raise

    def compatibility(self, subject: str | None = None) -> CompatibilityLevel:
        path = f"/config/{self._subject(subject)}?defaultToGlobal=true" if subject else "/config"
        doc = self._call("GET", path)
        return CompatibilityLevel(doc.get("compatibilityLevel") or doc.get("compatibility"))

    def set_compatibility(self, level: CompatibilityLevel | str,
                          subject: str | None = None) -> None:
        path = f"/config/{self._subject(subject)}" if subject else "/config"
        self._call("PUT", path, {"compatibility": CompatibilityLevel(level).value})

    def check(self, subject: str, schema: str | dict[str, Any],
              schema_type: str = "AVRO") -> list[str]:
        parse_schema(schema, schema_type)
        try:
            # against every version the subject's level names, as registration checks
            doc = self._call("POST", f"/compatibility/subjects/{self._subject(subject)}"
                                     f"/versions?verbose=true",
                             self._body(schema, schema_type))
        except _HttpRefusal as e:
            if e.status == 404:  # no such subject yet: anything goes
                return []
            raise
        if doc.get("is_compatible", False):
            return []
        return list(doc.get("messages") or ["the registry says the schema is incompatible"])

    def register(self, subject: str, schema: str | dict[str, Any],
                 schema_type: str = "AVRO") -> RegisteredSchema:
        parse_schema(schema, schema_type)
        body = self._body(schema, schema_type)
        try:
            self._call("POST", f"/subjects/{self._subject(subject)}/versions", body)
        except _HttpRefusal as e:
            if e.status == 409:
                raise IncompatibleSchemaError(
                    subject, self.compatibility(subject).value,
                    self.check(subject, schema, schema_type) or [e.message]) from None
            raise
        return self._registered(subject, self._call(
            "POST", f"/subjects/{self._subject(subject)}", body))


class _HttpRefusal(SchemaRegistryError):
    def __init__(self, status: int, detail: dict[str, Any]) -> None:
        self.status, self.message = status, str(detail.get("message", detail))
        super().__init__(f"schema registry refused the request (HTTP {status}, "
                         f"error {detail.get('error_code', '?')}): {self.message}")


def default_location() -> str:
    """``$SURESTREAM_SCHEMA_REGISTRY``, else ``$SURESTREAM_HOME/schemas`` (~/.surestream)."""
    given = os.environ.get(REGISTRY_ENV)
    if given:
        return given
    home = Path(os.environ.get("SURESTREAM_HOME", Path.home() / ".surestream"))
    return str(home / "schemas")


def open_registry(location: str | Path | None = None) -> SchemaRegistry:
    """The registry at ``location``: an ``http(s)://`` URL is a Confluent-compatible
    registry, anything else a folder (``default_location()`` when None)."""
    where = str(location) if location is not None else default_location()
    if where.startswith(("http://", "https://")):
        return HttpSchemaRegistry(where)
    return FileSchemaRegistry(where)
