"""The HTTP client of a Confluent-compatible schema registry, against a stand-in server.

No Confluent Schema Registry can run here (it is a JVM service), so this test serves the
file registry over the subset of Confluent's REST API the client uses (paths, bodies and
status codes as Confluent documents them: 404 for an unknown subject, 409 for an
incompatible schema, ``is_compatible``/``messages`` with ``verbose=true``). It shows the
client's requests and its handling of each answer; it cannot show that a real Confluent
registry gives the same answers."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import pytest

from surestream.apps.events.registration import register_event_schemas, schema_text, subject
from surestream.connectors.kafka.schema_registry import (
    FileSchemaRegistry,
    HttpSchemaRegistry,
    IncompatibleSchemaError,
    SchemaRegistryError,
    open_registry,
)


def confluent_stand_in(store: FileSchemaRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _answer(self, status: int, doc) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> dict:
            return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

        def _version(self, name: str, version) -> dict:
            r = store.get(name, version)
            doc = {"subject": name, "version": r.version, "id": r.id, "schema": r.schema}
            return doc | ({"schemaType": r.schema_type} if r.schema_type != "AVRO" else {})

        def do_GET(self) -> None:  # noqa: N802
            path = urlparse(self.path).path
            if path == "/subjects":
                return self._answer(200, store.subjects())
            if m := re.fullmatch(r"/subjects/([^/]+)/versions(?:/(\w+))?", path):
                name = unquote(m[1])
                if not store.versions(name):
                    return self._answer(404, {"error_code": 40401,
                                              "message": f"Subject '{name}' not found."})
                if m[2] is None:
                    return self._answer(200, store.versions(name))
                v = store.versions(name)[-1] if m[2] == "latest" else int(m[2])
                return self._answer(200, self._version(name, v))
            if m := re.fullmatch(r"/config(?:/([^/]+))?", path):
                level = store.compatibility(unquote(m[1]) if m[1] else None)
                return self._answer(200, {"compatibilityLevel": level.value})
            self._answer(404, {"error_code": 404, "message": "HTTP 404 Not Found"})

        def do_PUT(self) -> None:  # noqa: N802
            m = re.fullmatch(r"/config(?:/([^/]+))?", urlparse(self.path).path)
            level = self._body()["compatibility"]
            store.set_compatibility(level, unquote(m[1]) if m[1] else None)
            self._answer(200, {"compatibility": level})

        def do_POST(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            body = self._body()
            kind = body.get("schemaType", "AVRO")
            if m := re.fullmatch(r"/subjects/([^/]+)/versions", url.path):
                try:
                    return self._answer(200, {"id": store.register(unquote(m[1]),
                                                                  body["schema"], kind).id})
                except IncompatibleSchemaError:
                    return self._answer(409, {"error_code": 409, "message": "Schema being "
                                              "registered is incompatible with an earlier "
                                              "schema"})
            if m := re.fullmatch(r"/subjects/([^/]+)", url.path):
                name = unquote(m[1])
                for v in store.versions(name):
                    doc = self._version(name, v)
                    if json.loads(doc["schema"]) == json.loads(body["schema"]):
                        return self._answer(200, doc)
                return self._answer(404, {"error_code": 40403, "message": "Schema not found"})
            if m := re.fullmatch(r"/compatibility/subjects/([^/]+)/versions", url.path):
                problems = store.check(unquote(m[1]), body["schema"], kind)
                return self._answer(200, {"is_compatible": not problems,
                                          "messages": problems})
            self._answer(404, {"error_code": 404, "message": "HTTP 404 Not Found"})

    return Handler


@pytest.fixture
def registry_url(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 confluent_stand_in(FileSchemaRegistry(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_http_client_registers_reads_and_relays_refusals(registry_url):
    registry = open_registry(registry_url)
    assert isinstance(registry, HttpSchemaRegistry)
    name = subject("transaction", "JSON")
    assert registry.latest(name) is None and registry.versions(name) == []
    first = register_event_schemas(registry)
    assert len(first) == 10 and {r.version for r in first} == {1}
    assert registry.latest(name).schema_type == "JSON"
    assert registry.compatibility(name) == "BACKWARD"
    breaking = json.loads(schema_text("transaction", "JSON"))
    breaking["required"].append("country")
    breaking["properties"]["country"] = {"type": "string"}
    with pytest.raises(IncompatibleSchemaError) as refused:
        registry.register(name, breaking, "JSON")
    assert "#/properties/country: required by the reader" in refused.value.reasons[0]
    registry.set_compatibility("NONE", name)
    assert registry.register(name, breaking, "JSON").version == 2
    assert registry.versions(name) == [1, 2]


def test_an_unreachable_registry_is_named_with_what_to_do():
    with pytest.raises(SchemaRegistryError, match="cannot be reached.*local folder"):
        HttpSchemaRegistry("http://127.0.0.1:9", timeout_s=2).subjects()
