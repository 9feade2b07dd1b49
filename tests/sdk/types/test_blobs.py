from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest

from caddis.core.type_engine import (
    DataContext,
    PickleFallbackWarning,
    TypeEngine,
    TypeTransformerFailedError,
)
from caddis.types.directory import FlyteDirectory
from caddis.types.file import FlyteFile, JoblibSerializedFile
from caddis.types.structured import StructuredDataset
from caddis_idl.core.v1 import literals_pb2, types_pb2

SINGLE = types_pb2.BlobType.DIMENSIONALITY_SINGLE
MULTIPART = types_pb2.BlobType.DIMENSIONALITY_MULTIPART

CSV = FlyteFile[typing.TypeVar("csv")]


def wire(lit: literals_pb2.Literal) -> literals_pb2.Literal:
    return literals_pb2.Literal.FromString(lit.SerializeToString())


def test_file_roundtrip_is_uploaded_and_downloaded_lazily(
    data_ctx: DataContext, tmp_path: Path
) -> None:
    src = tmp_path / "data.csv"
    src.write_text("a,b\n1,2\n")
    lit = TypeEngine.to_literal(FlyteFile(str(src)), CSV, TypeEngine.to_literal_type(CSV))
    blob = lit.scalar.blob
    assert blob.uri.startswith(data_ctx.raw_output_prefix)
    assert blob.uri.endswith("/data.csv")
    assert blob.metadata.type.format == "csv"
    assert blob.metadata.type.dimensionality == SINGLE
    assert len(lit.hash) == 64

    f = TypeEngine.to_python_value(wire(lit), CSV)
    assert isinstance(f, CSV)
    assert f.remote_source == blob.uri
    assert not f.downloaded
    assert not os.path.exists(f.path)
    with open(f) as handle:  # os.fspath downloads
        assert handle.read() == "a,b\n1,2\n"
    assert f.downloaded
    assert f.path.startswith(data_ctx.local_dir)


def test_file_open_and_download(data_ctx: DataContext, tmp_path: Path) -> None:
    src = tmp_path / "x.bin"
    src.write_bytes(b"xyz")
    f = TypeEngine.to_python_value(TypeEngine.to_literal(str(src), FlyteFile), FlyteFile)
    with f.open("rb") as handle:
        assert handle.read() == b"xyz"
    assert Path(f.download()).read_bytes() == b"xyz"


def test_file_hash_follows_content_not_uri(data_ctx: DataContext, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    a.write_text("same")
    b.write_text("same")
    c.write_text("other")
    la, lb, lc = (TypeEngine.to_literal(str(p), FlyteFile) for p in (a, b, c))
    assert la.scalar.blob.uri != lb.scalar.blob.uri
    assert la.hash == lb.hash
    assert la.hash != lc.hash


def test_received_file_passed_on_is_not_uploaded_again(
    data_ctx: DataContext, tmp_path: Path
) -> None:
    src = tmp_path / "a.txt"
    src.write_text("x")
    lit = TypeEngine.to_literal(str(src), FlyteFile)
    f = TypeEngine.to_python_value(lit, FlyteFile)
    again = TypeEngine.to_literal(f, FlyteFile)
    assert again.scalar.blob.uri == lit.scalar.blob.uri
    assert again.hash == lit.hash


def test_remote_uri_passes_through(data_ctx: DataContext) -> None:
    lit = TypeEngine.to_literal(FlyteFile("s3://bucket/key.csv"), CSV)
    assert lit.scalar.blob.uri == "s3://bucket/key.csv"
    assert lit.hash == ""


def test_missing_local_file_is_an_error(data_ctx: DataContext, tmp_path: Path) -> None:
    with pytest.raises(TypeTransformerFailedError, match="does not exist") as info:
        TypeEngine.to_literal(str(tmp_path / "nope"), FlyteFile, name="f")
    assert "'f'" in str(info.value)


def test_written_file_via_new_remote_file(data_ctx: DataContext) -> None:
    f = FlyteFile.new_remote_file("out.txt")
    with f.open("w") as handle:
        handle.write("hello")
    lit = TypeEngine.to_literal(f, FlyteFile)
    assert lit.scalar.blob.uri == f.remote_path
    assert Path(TypeEngine.to_python_value(lit, FlyteFile).download()).read_text() == "hello"


def test_format_types() -> None:
    assert TypeEngine.to_literal_type(JoblibSerializedFile).blob.format == "joblib"
    assert TypeEngine.to_literal_type(FlyteFile).blob.format == ""
    assert FlyteFile["csv"] is CSV
    guessed = TypeEngine.guess_python_type(TypeEngine.to_literal_type(CSV))
    assert guessed.extension() == "csv"


def test_directory_roundtrip(data_ctx: DataContext, tmp_path: Path) -> None:
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("a")
    (d / "sub" / "b.txt").write_text("b")
    lit = TypeEngine.to_literal(FlyteDirectory(str(d)), FlyteDirectory)
    assert lit.scalar.blob.metadata.type.dimensionality == MULTIPART
    assert lit.hash
    out = TypeEngine.to_python_value(wire(lit), FlyteDirectory)
    assert not out.downloaded
    files = sorted(os.path.relpath(p, out.path) for p in FlyteDirectory.listdir(out))
    assert files == ["a.txt", os.path.join("sub", "b.txt")]
    assert Path(out.path, "sub", "b.txt").read_text() == "b"

    # The same tree elsewhere hashes the same.
    d2 = tmp_path / "d2"
    (d2 / "sub").mkdir(parents=True)
    (d2 / "sub" / "b.txt").write_text("b")
    (d2 / "a.txt").write_text("a")
    assert TypeEngine.to_literal(str(d2), FlyteDirectory).hash == lit.hash


def test_dataframe_roundtrip(data_ctx: DataContext) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [0.5, 1.5]})
    lit = TypeEngine.to_literal(df, pd.DataFrame, TypeEngine.to_literal_type(pd.DataFrame))
    sd = lit.scalar.structured_dataset
    assert sd.uri.startswith(data_ctx.raw_output_prefix)
    sdt = sd.metadata.structured_dataset_type
    assert sdt.format == "parquet"
    assert [(c.name, c.literal_type.simple) for c in sdt.columns] == [
        ("a", types_pb2.SIMPLE_TYPE_INTEGER),
        ("b", types_pb2.SIMPLE_TYPE_STRING),
        ("c", types_pb2.SIMPLE_TYPE_FLOAT),
    ]
    assert lit.hash
    out = TypeEngine.to_python_value(wire(lit), pd.DataFrame)
    pd.testing.assert_frame_equal(out, df, check_dtype=False)
    # Equal data written twice: different URIs, the same hash.
    again = TypeEngine.to_literal(df.copy(), pd.DataFrame)
    assert again.scalar.structured_dataset.uri != sd.uri
    assert again.hash == lit.hash


def test_structured_dataset_open_all(data_ctx: DataContext) -> None:
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    df = pd.DataFrame({"a": [1, 2, 3]})
    lit = TypeEngine.to_literal(StructuredDataset(dataframe=df), StructuredDataset)
    sd = TypeEngine.to_python_value(lit, StructuredDataset)
    assert isinstance(sd, StructuredDataset)
    assert sd.open(pd.DataFrame).all()["a"].tolist() == [1, 2, 3]
    table = sd.open(pa.Table).all()
    assert isinstance(table, pa.Table)
    assert [part.num_rows for part in sd.iter()] == [3]
    # Passed on unchanged: same URI, same hash, no new upload.
    again = TypeEngine.to_literal(sd, StructuredDataset)
    assert again.scalar.structured_dataset.uri == lit.scalar.structured_dataset.uri
    assert again.hash == lit.hash


def test_arrow_table_roundtrip(data_ctx: DataContext) -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"x": [1.0, 2.0]})
    out = TypeEngine.to_python_value(TypeEngine.to_literal(table, pa.Table), pa.Table)
    assert out.equals(table)


def test_declared_columns(data_ctx: DataContext) -> None:
    pd = pytest.importorskip("pandas")
    t = Annotated[pd.DataFrame, {"a": int, "b": str}]
    lt = TypeEngine.to_literal_type(t)
    cols = lt.structured_dataset_type.columns
    assert [(c.name, c.literal_type.simple) for c in cols] == [
        ("a", types_pb2.SIMPLE_TYPE_INTEGER),
        ("b", types_pb2.SIMPLE_TYPE_STRING),
    ]
    df = pd.DataFrame({"a": [1], "b": ["x"], "extra": [True]})
    out = TypeEngine.to_python_value(TypeEngine.to_literal(df, t), t)
    assert list(out.columns) == ["a", "b"]  # only the declared columns are read
    with pytest.raises(TypeTransformerFailedError, match="lacks declared columns") as info:
        TypeEngine.to_literal(pd.DataFrame({"a": [1]}), t, name="df")
    assert "'df'" in str(info.value)


def test_wrong_dataframe_kind_is_refused(data_ctx: DataContext) -> None:
    pd = pytest.importorskip("pandas")
    with pytest.raises(TypeTransformerFailedError, match="received"):
        TypeEngine.to_literal([1, 2], pd.DataFrame)


def test_numpy_roundtrip(data_ctx: DataContext) -> None:
    np = pytest.importorskip("numpy")
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    lt = TypeEngine.to_literal_type(np.ndarray)
    assert lt.blob.format == "npy"
    lit = TypeEngine.to_literal(arr, np.ndarray, lt)
    assert lit.scalar.blob.uri.endswith(".npy")
    assert lit.hash == TypeEngine.to_literal(arr.copy(), np.ndarray).hash
    out = TypeEngine.to_python_value(wire(lit), np.ndarray)
    assert out.dtype == arr.dtype
    np.testing.assert_array_equal(out, arr)
    typed = np.typing.NDArray[np.float32]
    assert TypeEngine.to_literal_type(typed).blob.format == "npy"


class Opaque:
    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.x == self.x


def test_pickle_fallback_warns_and_roundtrips(data_ctx: DataContext) -> None:
    with pytest.warns(PickleFallbackWarning, match="Opaque"):
        lt = TypeEngine.to_literal_type(Opaque)
    assert lt.blob.format == "PythonPickle"
    lit = TypeEngine.to_literal(Opaque(3), Opaque)
    assert lit.hash
    assert TypeEngine.to_python_value(wire(lit), Opaque) == Opaque(3)
    assert TypeEngine.to_python_value(lit, Any) == Opaque(3)


@dataclasses.dataclass
class Bundle:
    report: FlyteFile
    folder: FlyteDirectory
    table: StructuredDataset
    label: str = "x"


def test_dataclass_with_references(data_ctx: DataContext, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    f = tmp_path / "r.txt"
    f.write_text("report")
    d = tmp_path / "dir"
    d.mkdir()
    (d / "k.txt").write_text("k")
    value = Bundle(
        FlyteFile(str(f)), FlyteDirectory(str(d)), StructuredDataset(pd.DataFrame({"a": [1]}))
    )
    lt = TypeEngine.to_literal_type(Bundle)
    assert lt.structure.dataclass_type["report"].blob.dimensionality == SINGLE
    out = TypeEngine.to_python_value(wire(TypeEngine.to_literal(value, Bundle, lt)), Bundle)
    assert Path(out.report.download()).read_text() == "report"
    assert FlyteDirectory.listdir(out.folder)[0].endswith("k.txt")
    assert out.table.open(pd.DataFrame).all()["a"].tolist() == [1]
