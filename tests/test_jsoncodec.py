"""The JSON decoder behind ``Message.json()`` and the Python decode path: orjson when the
``fast`` extra is installed, the standard library otherwise, with the same results and a
``ValueError`` (so a rejection with its reason) on bad input either way."""

from __future__ import annotations

import importlib
import sys

import pytest
from parquet_ingestor import Message, jsoncodec
from parquet_ingestor.records import JsonLines

EVENT = (b'{"id":"e1","amount":94.8,"user_id":61837111192,"tags":["a","\xc3\xbc"],'
         b'"ctx":{"ip":"10.0.0.1","ua":null},"ok":true}')
DECODED = {"id": "e1", "amount": 94.8, "user_id": 61837111192, "tags": ["a", "ü"],
           "ctx": {"ip": "10.0.0.1", "ua": None}, "ok": True}


@pytest.fixture(params=["orjson", "json"])
def backend(request, monkeypatch):
    """Each test runs with orjson (installed in the dev environment) and without it."""
    if request.param == "json":
        monkeypatch.setitem(sys.modules, "orjson", None)  # `import orjson` raises ImportError
    module = importlib.reload(jsoncodec)
    yield module
    monkeypatch.undo()
    importlib.reload(jsoncodec)


def test_backend_is_orjson_when_installed_else_json(backend, request):
    assert request.node.callspec.params["backend"] == backend.BACKEND


def test_same_values_from_either_backend(backend):
    assert backend.loads(EVENT) == DECODED
    assert backend.loads(EVENT.decode()) == DECODED
    assert backend.loads(memoryview(EVENT)) == DECODED


@pytest.mark.parametrize("body", [b"{bad", b"", b'{"a": 1', b"\xff\xfe{}", b'{"a": 1}}'])
def test_bad_json_is_a_value_error(backend, body):
    with pytest.raises(ValueError):
        backend.loads(body)


def test_message_json_uses_the_fast_decoder():
    assert jsoncodec.BACKEND == "orjson"  # the dev environment installs the fast extra
    assert Message("m", EVENT).json() == DECODED
    with pytest.raises(ValueError):
        Message("m", b"not json").json()


def test_json_lines_python_decode_rejects_with_reasons(monkeypatch, backend):
    monkeypatch.setattr(jsoncodec, "loads", backend.loads)
    lines = JsonLines([EVENT, b"{bad", b"[1, 2]", b'{"b": 2}'], [0, 1, 2, 3],
                      columns={"_id": ["m0", "m1", "m2", "m3"]})
    records, rejected = lines.decode()
    assert records.rows == [{**DECODED, "_id": "m0"}, {"b": 2, "_id": "m3"}]
    assert records.sources == [0, 3]
    assert [source for source, _ in rejected] == [1, 2]
    assert rejected[0][1].startswith("invalid JSON")
    assert rejected[1][1] == "JSON value is a list, not an object"
