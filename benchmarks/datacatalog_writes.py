"""In-process cost of the datacatalog's writes: manager + database, no gRPC.

Times ``Database.run(lambda r: manager.<op>(r, ...))`` from one thread: CreateArtifact with one
tag (propeller's put), AddTag of a new tag, UpdateArtifact, GetOrExtendReservation granting a
new reservation and extending it; wall and CPU ms per call after 20 warm-up calls.

    python benchmarks/datacatalog_writes.py --only postgresql --calls 300
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from datacatalog_lookup import drop_postgres, postgres_database

from caddis.storage import StorageConfig, get_store
from caddis_datacatalog.manager.catalog import ArtifactHandle, CatalogManager, CatalogSettings
from caddis_datacatalog.repository.database import Database
from caddis_idl.core.v1 import literals_pb2
from caddis_idl.datacatalog.v1 import datacatalog_pb2 as dc

DATASET = dc.DatasetID(project="p", domain="d", name="t", version="1")


def timed(label: str, calls: int, fn: Callable[[int], object]) -> None:
    for i in range(20):
        fn(10**6 + i)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(calls):
        fn(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"| {label} | {wall / calls * 1000:.2f} | {cpu / calls * 1000:.2f} |", flush=True)


def bench(label: str, url: str, calls: int, workdir: Path) -> None:
    db = Database(url)
    db.migrate()
    prefix = f"file://{workdir / label / 'blobs'}"
    store = get_store(prefix, StorageConfig(local_root=str(workdir)))
    manager = CatalogManager(CatalogSettings(data_prefix=prefix), store)
    db.run(lambda r: manager.create_dataset(r, dc.Dataset(id=DATASET)))
    value = literals_pb2.Literal()
    value.scalar.primitive.integer = 1
    data = [dc.ArtifactData(name="o0", value=value)]

    def artifact(name: str, tag: str | None = None) -> dc.Artifact:
        tags = [dc.Tag(name=tag, dataset=DATASET)] if tag else []
        return dc.Artifact(id=name, dataset=DATASET, data=data, tags=tags)

    db.run(lambda r: manager.create_artifact(r, artifact("fixed")))
    db.run(lambda r: manager.create_artifact(r, artifact("updated")))

    def create(i: int) -> None:
        db.run(lambda r: manager.create_artifact(r, artifact(f"a{i}", f"t{i}")))

    def add_tag(i: int) -> None:
        tag = dc.Tag(name=f"extra{i}", artifact_id="fixed", dataset=DATASET)
        db.run(lambda r: manager.add_tag(r, tag))

    def update(i: int) -> None:
        handle = ArtifactHandle(artifact_id="updated")
        db.run(lambda r: manager.update_artifact(r, DATASET, handle, data, None))

    def reserve(i: int) -> None:
        rid = dc.ReservationID(dataset_id=DATASET, tag_name=f"r{i}")
        heartbeat = dt.timedelta(seconds=5)
        db.run(lambda r: manager.get_or_extend_reservation(r, rid, "owner", heartbeat))

    try:
        timed(f"{label} | CreateArtifact + tag", calls, create)
        timed(f"{label} | AddTag (new tag)", calls, add_tag)
        timed(f"{label} | UpdateArtifact", calls, update)
        timed(f"{label} | GetOrExtendReservation (grant)", calls, reserve)
        timed(f"{label} | GetOrExtendReservation (extend)", calls, reserve)
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    args = parser.parse_args()
    print("| database | operation | wall ms/call | CPU ms/call |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.only in (None, "sqlite"):
            bench("sqlite", f"sqlite:///{workdir / 'catalog.db'}", args.calls, workdir)
        if args.only in (None, "postgresql"):
            pg = postgres_database()
            if pg is not None:
                try:
                    bench("postgresql", pg[0], args.calls, workdir)
                finally:
                    drop_postgres(pg[1])


if __name__ == "__main__":
    main()
