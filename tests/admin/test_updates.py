"""Execution tags, launches propeller refuses, node listing at every level, project paging."""

from __future__ import annotations

import grpc
import pytest

from caddis_idl.admin.v1 import common_pb2, execution_pb2, project_pb2
from caddis_idl.admin.v1 import event_service_pb2 as evs
from caddis_idl.admin.v1 import execution_service_pb2 as es
from caddis_idl.admin.v1 import node_execution_service_pb2 as nes
from caddis_idl.admin.v1 import project_service_pb2 as ps
from caddis_idl.core.v1 import execution_pb2 as ce
from caddis_idl.event.v1 import event_pb2
from tests.admin.conftest import Stubs
from tests.admin.helpers import D, P, int_lit, lmap
from tests.admin.test_events import node_id
from tests.admin.test_executions import create, exec_id
from tests.admin.test_registration import register_basics
from tests.support import wait_until


def eq(field, *values, op=common_pb2.FILTER_OPERATOR_EQ):
    return common_pb2.Filter(field=field, op=op, values=list(values))


def get(stubs, name):
    return stubs.executions.GetExecution(es.GetExecutionRequest(id=exec_id(name))).execution


def list_names(stubs, *filters):
    resp = stubs.executions.ListExecutions(
        es.ListExecutionsRequest(
            project=P, domain=D, options=common_pb2.ListOptions(filters=list(filters))
        )
    )
    return sorted(e.id.name for e in resp.executions)


def test_tags_at_creation_update_and_filter(stubs):
    register_basics(stubs)
    a = create(stubs, inputs=lmap(x=int_lit(1)), name="a", tags=["nightly", "gpu", "nightly"])
    b = create(stubs, inputs=lmap(x=int_lit(2)), name="b")
    assert list(get(stubs, a).spec.tags) == ["nightly", "gpu"]  # duplicates dropped
    assert list_names(stubs, eq("tags", "nightly")) == ["a"]

    updated = stubs.executions.UpdateExecution(
        es.UpdateExecutionRequest(
            id=exec_id(b), add_tags=["nightly", "review", "nightly"], remove_tags=["absent"]
        )
    ).execution
    assert list(updated.spec.tags) == ["nightly", "review"]
    stubs.executions.UpdateExecution(
        es.UpdateExecutionRequest(id=exec_id(a), add_tags=["gpu"], remove_tags=["nightly"])
    )
    assert list(get(stubs, a).spec.tags) == ["gpu"]
    assert list(get(stubs, b).spec.tags) == ["nightly", "review"]
    assert list_names(stubs, eq("tags", "nightly")) == ["b"]
    assert list_names(stubs, eq("tags", "gpu", "review", op=common_pb2.FILTER_OPERATOR_IN)) == [
        "a",
        "b",
    ]

    # State and tags change together; the state is kept when only tags change.
    archived = execution_pb2.EXECUTION_STATE_ARCHIVED
    both = stubs.executions.UpdateExecution(
        es.UpdateExecutionRequest(id=exec_id(a), state=archived, add_tags=["archived-run"])
    ).execution
    assert both.closure.state_change_details.state == archived
    assert list(both.spec.tags) == ["gpu", "archived-run"]

    with pytest.raises(grpc.RpcError) as err:
        stubs.executions.UpdateExecution(es.UpdateExecutionRequest(id=exec_id(a), add_tags=[""]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        stubs.executions.UpdateExecution(
            es.UpdateExecutionRequest(id=exec_id("missing"), add_tags=["x"])
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION]
)
def test_refused_launch_fails_the_execution_and_frees_its_slot(make_admin, propeller, code):
    propeller.refuse = (code, "the compiled closure has no node 'n0'")
    admin = make_admin(propeller_address=propeller.address, max_concurrent_executions=1)
    with grpc.insecure_channel(admin.address) as channel:
        stubs = Stubs(channel)
        register_basics(stubs)
        first = create(stubs, inputs=lmap(x=int_lit(1)))
        second = create(stubs, inputs=lmap(x=int_lit(2)))  # waits for the quota slot
        got = wait_until(
            lambda: (
                (e := get(stubs, first)).closure.phase == ce.WORKFLOW_EXECUTION_PHASE_FAILED and e
            ),
            message="refused execution marked FAILED",
        )
        error = got.closure.error
        assert error.code == "SYSTEM:LaunchRefused"
        assert code.name in error.message
        assert "has no node 'n0'" in error.message
        # The slot it held goes to the queued execution, whose launch is refused in turn.
        wait_until(lambda: second in propeller.refused, message="queued execution handed over")
        propeller.refuse = None
        wait_until(
            lambda: get(stubs, second).closure.phase == ce.WORKFLOW_EXECUTION_PHASE_FAILED,
            message="second refused execution marked FAILED",
        )
        # Launches that propeller accepts are unaffected.
        third = create(stubs, inputs=lmap(x=int_lit(3)))
        wait_until(lambda: third in propeller.launched_names(), message="third launched")
        assert get(stubs, third).closure.phase == ce.WORKFLOW_EXECUTION_PHASE_QUEUED


def node_event(stubs, name, node, parent="", at=10):
    ev = event_pb2.NodeExecutionEvent(id=node_id(name, node), phase=ce.NODE_EXECUTION_PHASE_RUNNING)
    ev.occurred_at.FromSeconds(at)
    if parent:
        ev.parent_node_metadata.node_id = parent
    stubs.events.CreateNodeEvent(evs.CreateNodeEventRequest(request_id=f"{name}-{node}", event=ev))


def test_list_node_executions_all_levels(stubs):
    register_basics(stubs)
    name = create(stubs, inputs=lmap(x=int_lit(1)))
    node_event(stubs, name, "n0", at=10)
    node_event(stubs, name, "n1", at=11)
    node_event(stubs, name, "n1-0", parent="n1", at=12)
    node_event(stubs, name, "n1-0-0", parent="n1-0", at=13)

    def listed(**kw):
        out, token = [], ""
        while True:
            resp = stubs.nodes.ListNodeExecutions(
                nes.ListNodeExecutionsRequest(
                    execution_id=exec_id(name),
                    options=common_pb2.ListOptions(
                        limit=3,
                        token=token,
                        sort_by=common_pb2.Sort(
                            key="node_id", direction=common_pb2.SORT_DIRECTION_ASCENDING
                        ),
                    ),
                    **kw,
                )
            )
            out.extend(n.id.node_id for n in resp.node_executions)
            token = resp.next_token
            if not token:
                return out

    assert listed() == ["n0", "n1"]
    assert listed(unique_parent_id="n1") == ["n1-0"]
    assert listed(all_levels=True) == ["n0", "n1", "n1-0", "n1-0-0"]
    # all_levels ignores the parent, even one that does not exist.
    assert listed(all_levels=True, unique_parent_id="nope") == ["n0", "n1", "n1-0", "n1-0-0"]


def test_list_projects_pages(stubs):
    for i in range(7):
        stubs.projects.CreateProject(
            ps.CreateProjectRequest(
                project=project_pb2.Project(id=f"p{i}", name=f"Project {6 - i}")
            )
        )
    stubs.projects.UpdateProject(
        ps.UpdateProjectRequest(
            project=project_pb2.Project(
                id="p3", name="Project 3", state=project_pb2.PROJECT_STATE_ARCHIVED
            )
        )
    )

    def pages(**options):
        out, token, sizes = [], "", []
        while True:
            resp = stubs.projects.ListProjects(
                ps.ListProjectsRequest(options=common_pb2.ListOptions(token=token, **options))
            )
            out.extend(p.id for p in resp.projects)
            sizes.append(len(resp.projects))
            token = resp.next_token
            if not token:
                return out, sizes

    ids, sizes = pages(limit=3)
    assert ids == [f"p{i}" for i in range(7)] and sizes == [3, 3, 1]
    by_name, _ = pages(
        limit=2, sort_by=common_pb2.Sort(key="name", direction=common_pb2.SORT_DIRECTION_ASCENDING)
    )
    assert by_name == [f"p{i}" for i in reversed(range(7))]
    newest_first, _ = pages(limit=4, sort_by=common_pb2.Sort(key="created_at"))
    assert sorted(newest_first) == [f"p{i}" for i in range(7)] and len(newest_first) == 7
    archived, _ = pages(filters=[eq("state", "ARCHIVED")])
    assert archived == ["p3"]
    everything = stubs.projects.ListProjects(ps.ListProjectsRequest()).projects
    assert [p.id for p in everything] == [f"p{i}" for i in range(7)]
    with pytest.raises(grpc.RpcError) as err:
        stubs.projects.ListProjects(
            ps.ListProjectsRequest(options=common_pb2.ListOptions(sort_by=common_pb2.Sort(key="x")))
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_get_execution_survives_dropped_connections(make_admin, propeller, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("connections are dropped by the PostgreSQL server")
    import psycopg
    from sqlalchemy import make_url

    admin = make_admin(propeller_address=propeller.address)
    with grpc.insecure_channel(admin.address) as channel:
        stubs = Stubs(channel)
        register_basics(stubs)
        name = create(stubs, inputs=lmap(x=int_lit(1)))
        assert get(stubs, name).id.name == name  # the read pool now holds a connection
        url = make_url(db_url)
        with psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
        ) as c:
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        # The dead pooled connection fails once, is discarded, and the read is repeated.
        assert get(stubs, name).id.name == name
