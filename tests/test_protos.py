"""The committed stubs are exactly what protos/generate.py makes from protos/."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "protos"))
import generate  # noqa: E402


@pytest.mark.cluster  # runs protos/generate.py
def test_generated_stubs_match_protos(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "protos" / "generate.py"), "--out", str(tmp_path)], check=True)
    fresh = generate.generated_files(tmp_path)
    assert fresh, "no stubs generated"
    for path in fresh:
        committed = REPO / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run `python protos/generate.py`"
        assert committed.read_text() == path.read_text(), f"{committed} drifted from protos/: run `python protos/generate.py`"


def test_public_service_is_the_contract_in_docs_api() -> None:
    from loot.v1 import database_pb2

    service = database_pb2.DESCRIPTOR.services_by_name["Database"]
    assert service.full_name == "loot.v1.Database"
    assert {m.name for m in service.methods} >= {"Execute", "Batch", "Describe"}
    value = database_pb2.Value.DESCRIPTOR
    assert [(f.name, f.number) for f in value.fields] == [("null", 1), ("integer", 2), ("real", 3), ("text", 4), ("blob", 5)]
    result = database_pb2.Result.DESCRIPTOR
    assert [(f.name, f.number) for f in result.fields] == [
        ("columns", 1), ("rows", 2), ("rows_read", 3), ("rows_written", 4), ("last_insert_rowid", 5)]


def test_connect_stubs_are_generated_for_the_public_service() -> None:
    """The HTTP port serves the Connect stubs protos/generate.py makes (loot/v1/database_connect.py)."""
    assert Path("loot/v1/database_connect.py") in generate.generated_files(Path("."))
    from loot.v1 import database_connect, database_pb2

    service = database_pb2.DESCRIPTOR.services_by_name["Database"]
    class Unimplemented(database_connect.Database):  # the generated methods, each answering `unimplemented`
        pass

    endpoints = database_connect.DatabaseASGIApplication(Unimplemented())._endpoints(Unimplemented())
    assert sorted(endpoints) == sorted(f"/loot.v1.Database/{m.name}" for m in service.methods)
    assert all(endpoint.method.input.DESCRIPTOR is service.methods_by_name[endpoint.method.name].input_type
               for endpoint in endpoints.values())
