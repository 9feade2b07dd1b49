"""Repositories: the queries admin runs, one class per table family, bound to a session.

Managers get a :class:`Repos` from ``Database.transaction()`` and never see SQLAlchemy; rows
come back as the model objects of :mod:`caddis_admin.repository.models`, plain attribute bags.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, NamedTuple, TypeVar, cast

from sqlalchemy import (
    Dialect,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from caddis._serving.errors import InvalidArgumentError
from caddis_admin.repository.models import (
    Base,
    CodeBundleRow,
    EventRecordRow,
    ExecutionLabelRow,
    ExecutionRow,
    ExecutionTagRow,
    LaunchPlanRow,
    LeaseRow,
    NodeExecutionRow,
    OutboxRow,
    ProjectRow,
    ScheduleRunRow,
    ScheduleStateRow,
    SignalRow,
    TaskExecutionRow,
    TaskRow,
    WorkflowRow,
)
from caddis_admin.repository.query import Filter, ListQuery, decode_token, encode_token

R = TypeVar("R", bound=Base)


class DuplicateKeyError(Exception):
    """A transaction inserted a row whose unique key another row already holds."""


# LaunchPlanState.LAUNCH_PLAN_STATE_ACTIVE / _INACTIVE of the IDL, stored as is.
LP_ACTIVE = 2
LP_INACTIVE = 1
# Outbox rows of executions waiting for a quota slot are held back this way until admitted.
HELD = 2**62


def _condition(column: Any, op: str, value: Any) -> Any:
    if op == "eq":
        return column == value
    if op == "ne":
        return column != value
    if op == "gt":
        return column > value
    if op == "gte":
        return column >= value
    if op == "lt":
        return column < value
    if op == "lte":
        return column <= value
    if op == "in":
        return column.in_(list(value))
    if op == "contains":
        return column.contains(str(value), autoescape=True)
    raise InvalidArgumentError(f"unknown filter operator {op!r}")


def _paged(
    session: Session,
    model: type[R],
    stmt: Select[Any],
    query: ListQuery,
    columns: dict[str, Any],
) -> tuple[list[R], str]:
    """Run ``stmt`` as one keyset page: sort by (sort column, id), resume after the token.

    Keyset pagination reads only the rows of the page from an index, so a page costs the
    same at row 100,000 as at row 0 (OFFSET would scan everything before it).
    """
    sort_key = query.sort_key or "created_at"
    if sort_key not in columns:
        raise InvalidArgumentError(
            f"cannot sort by {sort_key!r}; sortable keys: {', '.join(sorted(columns))}",
            field="sort_by",
        )
    col = columns[sort_key]
    row_id: InstrumentedAttribute[int] = model.id  # type: ignore[attr-defined]
    if query.token:
        value, last_id = decode_token(query.token, sort_key)
        # A row-value comparison, not an OR of two conditions: the database turns it into
        # one range scan of the (…, sort column, id) index.
        key = tuple_(col, row_id)
        bound = tuple_(literal(value, col.type), literal(last_id, row_id.type))
        stmt = stmt.where(key > bound if query.ascending else key < bound)
    order = (col.asc(), row_id.asc()) if query.ascending else (col.desc(), row_id.desc())
    limit = max(1, min(query.limit or 100, 10_000))
    rows: list[R] = list(session.scalars(stmt.order_by(*order).limit(limit + 1)))
    token = ""
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        token = encode_token(sort_key, getattr(last, col.key), last.id)  # type: ignore[attr-defined]
    return rows, token


def _apply_filters(
    stmt: Select[Any], filters: Sequence[Filter], columns: dict[str, Any], what: str
) -> Select[Any]:
    for f in filters:
        if f.field == "tags" and what == "executions":
            tag_cond = and_(
                ExecutionTagRow.execution_id == ExecutionRow.id,
                _condition(ExecutionTagRow.tag, f.op, f.value),
            )
            stmt = stmt.where(exists().where(tag_cond))
            continue
        if f.field.startswith("labels.") and what == "executions":
            key = f.field.removeprefix("labels.")
            label_cond = and_(
                ExecutionLabelRow.execution_id == ExecutionRow.id,
                ExecutionLabelRow.key == key,
                _condition(ExecutionLabelRow.value, f.op, f.value),
            )
            stmt = stmt.where(exists().where(label_cond))
            continue
        column = columns.get(f.field)
        if column is None:
            raise InvalidArgumentError(
                f"cannot filter {what} by {f.field!r}; filterable fields: "
                f"{', '.join(sorted(columns))}",
                field="filters",
            )
        stmt = stmt.where(_condition(column, f.op, f.value))
    return stmt


class ProjectRepo:
    """Projects."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def get(self, project_id: str) -> ProjectRow | None:
        """The project with this id, or None."""
        return self._s.get(ProjectRow, project_id)

    def add(self, row: ProjectRow) -> bool:
        """Insert a project; False when one with the same id exists."""
        try:
            with self._s.begin_nested():
                self._s.add(row)
        except IntegrityError:
            return False
        return True

    def all(self) -> list[ProjectRow]:
        """Every project, by id."""
        return list(self._s.scalars(select(ProjectRow).order_by(ProjectRow.id)))

    def page(self, query: ListQuery) -> tuple[list[ProjectRow], str]:
        """A page of projects, sorted by ``id``, ``name`` or ``created_at`` (then id).

        Keyset paging like :func:`_paged`, with the project id (a string) as tie-break.
        """
        columns: dict[str, Any] = {
            "id": ProjectRow.id,
            "name": ProjectRow.name,
            "state": ProjectRow.state,
            "created_at": ProjectRow.created_at,
        }
        sort_key = query.sort_key
        col = columns.get(sort_key)
        if col is None or sort_key == "state":
            raise InvalidArgumentError(
                f"cannot sort projects by {sort_key!r}; sortable keys: created_at, id, name",
                field="sort_by",
            )
        stmt = _apply_filters(select(ProjectRow), query.filters, columns, "projects")
        if query.token:
            value, _ = decode_token(query.token, sort_key)
            if sort_key == "id":
                stmt = stmt.where(
                    ProjectRow.id > value if query.ascending else ProjectRow.id < value
                )
            else:
                if not isinstance(value, list) or len(value) != 2:
                    raise InvalidArgumentError(f"page token {query.token!r} is malformed")
                key = tuple_(col, ProjectRow.id)
                bound = tuple_(literal(value[0], col.type), literal(value[1], ProjectRow.id.type))
                stmt = stmt.where(key > bound if query.ascending else key < bound)
        keys = [col] if sort_key == "id" else [col, ProjectRow.id]
        stmt = stmt.order_by(*(k.asc() if query.ascending else k.desc() for k in keys))
        limit = max(1, min(query.limit or 100, 10_000))
        rows = list(self._s.scalars(stmt.limit(limit + 1)))
        token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            value = last.id if sort_key == "id" else [getattr(last, col.key), last.id]
            token = encode_token(sort_key, value, 0)
        return rows, token


E = TypeVar("E", TaskRow, WorkflowRow, LaunchPlanRow)


class EntityRepo(Generic[E]):
    """Immutable versioned entities (tasks, workflows, launch plans) of one table."""

    def __init__(self, session: Session, model: type[E], columns: dict[str, Any]) -> None:
        self._s = session
        self._model: type[E] = model
        self._columns = columns

    def get(self, project: str, domain: str, name: str, version: str) -> E | None:
        """The entity with this identifier, or None."""
        m: Any = self._model
        return self._s.scalars(
            select(self._model).where(
                m.project == project, m.domain == domain, m.name == name, m.version == version
            )
        ).first()

    def add(self, row: E) -> E | None:
        """Insert ``row``; when the identifier is taken return the existing row instead.

        The unique constraint decides, so two registrations racing for one id cannot both win.
        """
        try:
            with self._s.begin_nested():
                self._s.add(row)
        except IntegrityError:
            existing = self.get(row.project, row.domain, row.name, row.version)
            if existing is None:  # the failure was something other than the identifier
                raise
            return existing
        return None

    def page(self, project: str, domain: str, name: str, query: ListQuery) -> tuple[list[E], str]:
        """A page of entities of a project+domain (and name, when given)."""
        m: Any = self._model
        stmt = select(self._model).where(m.project == project, m.domain == domain)
        if name:
            stmt = stmt.where(m.name == name)
        stmt = _apply_filters(stmt, query.filters, self._columns, self._model.__tablename__)
        return _paged(self._s, self._model, stmt, query, self._columns)

    def list_names(
        self, project: str, domain: str, limit: int, token: str
    ) -> tuple[list[str], str]:
        """Distinct entity names of a project+domain, by name, paged by name."""
        m: Any = self._model
        stmt = select(m.name).where(m.project == project, m.domain == domain).distinct()
        if token:
            after, _ = decode_token(token, "name")
            stmt = stmt.where(m.name > after)
        names = list(self._s.scalars(stmt.order_by(m.name).limit(limit + 1)))
        next_token = ""
        if len(names) > limit:
            names = names[:limit]
            next_token = encode_token("name", names[-1], 0)
        return names, next_token


class LaunchPlanRepo(EntityRepo[LaunchPlanRow]):
    """Launch plans: entity queries plus activation state."""

    def active(self, project: str, domain: str, name: str) -> LaunchPlanRow | None:
        """The active version of a launch plan name, or None."""
        return self._s.scalars(
            select(LaunchPlanRow).where(
                LaunchPlanRow.project == project,
                LaunchPlanRow.domain == domain,
                LaunchPlanRow.name == name,
                LaunchPlanRow.state == LP_ACTIVE,
            )
        ).first()

    def set_state(self, row: LaunchPlanRow, state: int, now: int) -> None:
        """Set one version's state; activating it deactivates every other version."""
        if state == LP_ACTIVE:
            self._s.execute(
                update(LaunchPlanRow)
                .where(
                    LaunchPlanRow.project == row.project,
                    LaunchPlanRow.domain == row.domain,
                    LaunchPlanRow.name == row.name,
                    LaunchPlanRow.id != row.id,
                    LaunchPlanRow.state == LP_ACTIVE,
                )
                .values(state=LP_INACTIVE, updated_at=now)
            )
        row.state = state
        row.updated_at = now
        self._s.flush()

    def active_scheduled(self) -> list[LaunchPlanRow]:
        """Every active launch plan that has a schedule."""
        return list(
            self._s.scalars(
                select(LaunchPlanRow).where(
                    LaunchPlanRow.state == LP_ACTIVE, LaunchPlanRow.schedule_type != ""
                )
            )
        )


class BundleRepo:
    """Code bundles handed out for upload."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def get(self, project: str, domain: str, digest: str) -> CodeBundleRow | None:
        """The bundle with this digest in a project+domain, or None."""
        return self._s.scalars(
            select(CodeBundleRow).where(
                CodeBundleRow.project == project,
                CodeBundleRow.domain == domain,
                CodeBundleRow.digest == digest,
            )
        ).first()

    def add(self, row: CodeBundleRow) -> CodeBundleRow:
        """Record a bundle, or return the one already recorded under its digest."""
        try:
            with self._s.begin_nested():
                self._s.add(row)
        except IntegrityError:
            existing = self.get(row.project, row.domain, row.digest)
            if existing is None:
                raise
            return existing
        return row


EXECUTION_COLUMNS: dict[str, Any] = {
    "created_at": ExecutionRow.created_at,
    "updated_at": ExecutionRow.updated_at,
    "started_at": ExecutionRow.started_at,
    "name": ExecutionRow.name,
    "phase": ExecutionRow.phase,
    "launch_plan_name": ExecutionRow.lp_name,
    "launch_plan_version": ExecutionRow.lp_version,
    "workflow_name": ExecutionRow.wf_name,
    "workflow_version": ExecutionRow.wf_version,
    "mode": ExecutionRow.mode,
    "scheduled_at": ExecutionRow.scheduled_at,
}


class ExecutionRecord(NamedTuple):
    """The columns of one execution that GetExecution builds its message from."""

    project: str
    domain: str
    name: str
    lp_name: str
    lp_version: str
    wf_name: str
    wf_version: str
    phase: int
    admitted: bool
    created_at: int
    updated_at: int
    started_at: int | None
    ended_at: int | None
    outputs_uri: str
    spec: bytes
    closure: bytes


_EXECUTIONS = cast(Table, ExecutionRow.__table__)
_OUTBOX = cast(Table, OutboxRow.__table__)
# Constant statements with the values passed as parameters: building .values() per call
# costs more CPU than the INSERT itself.
_INSERT_EXECUTION = insert(_EXECUTIONS).returning(_EXECUTIONS.c.id)
_INSERT_OUTBOX = insert(_OUTBOX)
# Just what GetExecution needs: the stored spec/closure bytes plus the columns the closure is
# completed from, in ExecutionRecord's order.
GET_EXECUTION: Select[Any] = select(*(_EXECUTIONS.c[f] for f in ExecutionRecord._fields)).where(
    _EXECUTIONS.c.project == bindparam("project"),
    _EXECUTIONS.c.domain == bindparam("domain"),
    _EXECUTIONS.c.name == bindparam("name"),
)


class CompiledRead:
    """A Core ``select`` compiled once for a dialect and run on a driver cursor.

    The hottest reads skip SQLAlchemy's per-call work (connection wrapper, cache key,
    parameter processing, result wrapping), which costs several times the driver's own:
    they are single statements on plain columns that need none of it.

    Args:
        stmt: The statement; its parameters are named ``bindparam`` s.
        dialect: The engine's dialect.
    """

    def __init__(self, stmt: Select[Any], dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self._order = tuple(compiled.positiontup or ()) if compiled.positional else None

    def first(self, cursor: Any, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Run the statement with ``params`` and return its first row, or None."""
        args: Any = params if self._order is None else tuple(params[k] for k in self._order)
        cursor.execute(self.sql, args)
        row = cursor.fetchone()
        return None if row is None else tuple(row)


class Reads:
    """Single-statement reads on a driver cursor, for the hottest read RPCs.

    No ORM session and no object hydration: one precompiled query per call, whose row comes
    back as a plain named tuple.

    Args:
        cursor: A DB-API cursor of a pooled connection in autocommit.
        get_execution: :data:`GET_EXECUTION` compiled for the connection's dialect.
    """

    def __init__(self, cursor: Any, get_execution: CompiledRead) -> None:
        self._cur = cursor
        self._get_execution = get_execution

    def execution(self, project: str, domain: str, name: str) -> ExecutionRecord | None:
        """The columns of one execution that its message is built from, or None."""
        row = self._get_execution.first(
            self._cur, {"project": project, "domain": domain, "name": name}
        )
        return None if row is None else ExecutionRecord._make(row)


class ExecutionRepo:
    """Workflow executions and their labels."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def get(self, project: str, domain: str, name: str) -> ExecutionRow | None:
        """The execution with this identifier, or None."""
        return self._s.scalars(
            select(ExecutionRow).where(
                ExecutionRow.project == project,
                ExecutionRow.domain == domain,
                ExecutionRow.name == name,
            )
        ).first()

    def get_for_update(self, project: str, domain: str, name: str) -> ExecutionRow | None:
        """Like :meth:`get`, locking the row until the transaction ends (PostgreSQL)."""
        return self._s.scalars(
            select(ExecutionRow)
            .where(
                ExecutionRow.project == project,
                ExecutionRow.domain == domain,
                ExecutionRow.name == name,
            )
            .with_for_update()
        ).first()

    def by_id(self, execution_id: int) -> ExecutionRow | None:
        """The execution with this row id, or None."""
        return self._s.get(ExecutionRow, execution_id)

    def insert(self, values: dict[str, Any], labels: dict[str, str], tags: Sequence[str]) -> int:
        """Insert an execution, its labels and its tags with plain INSERTs; return its row id.

        Core statements rather than the ORM unit of work: creation is a hot path and the
        row is not needed as an object. No savepoint either (two more round trips): when the
        name is taken the whole transaction fails and ``Database.run`` raises
        :class:`DuplicateKeyError`.
        """
        row_id = int(self._s.execute(_INSERT_EXECUTION, values).scalar_one())
        if labels:
            self._s.execute(
                insert(ExecutionLabelRow),
                [{"execution_id": row_id, "key": k, "value": v} for k, v in labels.items()],
            )
        if tags:
            self._s.execute(
                insert(ExecutionTagRow),
                [{"execution_id": row_id, "tag": t} for t in tags],
            )
        return row_id

    def change_tags(self, execution_id: int, add: Sequence[str], remove: Sequence[str]) -> None:
        """Add and remove tags of an execution (the caller keeps its spec in step)."""
        if remove:
            self._s.execute(
                delete(ExecutionTagRow).where(
                    ExecutionTagRow.execution_id == execution_id,
                    ExecutionTagRow.tag.in_(list(remove)),
                )
            )
        present = set(
            self._s.scalars(
                select(ExecutionTagRow.tag).where(ExecutionTagRow.execution_id == execution_id)
            )
        )
        for tag in add:
            if tag not in present:
                self._s.add(ExecutionTagRow(execution_id=execution_id, tag=tag))
                present.add(tag)
        self._s.flush()

    def page(self, project: str, domain: str, query: ListQuery) -> tuple[list[ExecutionRow], str]:
        """A page of executions of a project+domain."""
        stmt: Select[Any] = select(ExecutionRow).where(
            ExecutionRow.project == project, ExecutionRow.domain == domain
        )
        stmt = _apply_filters(stmt, query.filters, EXECUTION_COLUMNS, "executions")
        return _paged(self._s, ExecutionRow, stmt, query, EXECUTION_COLUMNS)

    def count_running(self, project: str, domain: str, terminal: Sequence[int]) -> int:
        """Admitted executions of a project+domain that have not reached a terminal phase."""
        return int(
            self._s.scalar(
                select(func.count())
                .select_from(ExecutionRow)
                .where(
                    ExecutionRow.project == project,
                    ExecutionRow.domain == domain,
                    ExecutionRow.admitted.is_(True),
                    ExecutionRow.phase.not_in(list(terminal)),
                )
            )
            or 0
        )

    def phase_counts(self) -> dict[int, int]:
        """How many executions are in each phase (for the metrics endpoint)."""
        rows = self._s.execute(
            select(ExecutionRow.phase, func.count()).group_by(ExecutionRow.phase)
        ).all()
        return {int(phase): int(count) for phase, count in rows}

    def oldest_queued(self, project: str, domain: str, limit: int) -> list[ExecutionRow]:
        """The executions waiting for a quota slot, oldest first."""
        return list(
            self._s.scalars(
                select(ExecutionRow)
                .where(
                    ExecutionRow.project == project,
                    ExecutionRow.domain == domain,
                    ExecutionRow.admitted.is_(False),
                )
                .order_by(ExecutionRow.id)
                .limit(limit)
            )
        )

    def flush(self) -> None:
        """Write pending changes of loaded rows now (inside the transaction)."""
        self._s.flush()


class NodeExecutionRepo:
    """Node executions."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def get(self, execution_id: int, node_id: str) -> NodeExecutionRow | None:
        """The node execution of ``node_id`` in an execution, or None."""
        return self._s.scalars(
            select(NodeExecutionRow).where(
                NodeExecutionRow.execution_id == execution_id,
                NodeExecutionRow.node_id == node_id,
            )
        ).first()

    def by_id(self, row_id: int) -> NodeExecutionRow | None:
        """The node execution with this row id, or None."""
        return self._s.get(NodeExecutionRow, row_id)

    def get_many(self, execution_id: int, node_ids: Sequence[str]) -> dict[str, NodeExecutionRow]:
        """The node executions of these node ids in an execution (one query), by node id."""
        if not node_ids:
            return {}
        rows = self._s.scalars(
            select(NodeExecutionRow).where(
                NodeExecutionRow.execution_id == execution_id,
                NodeExecutionRow.node_id.in_(list(node_ids)),
            )
        )
        return {row.node_id: row for row in rows}

    def insert(self, row: NodeExecutionRow) -> NodeExecutionRow:
        """Insert a node execution now (its id is set), without a savepoint.

        For callers that hold the execution's row lock, so that no concurrent event inserts
        the same node; if one did anyway, the transaction fails with a duplicate key.
        """
        self._s.add(row)
        self._s.flush([row])
        return row

    def add(self, row: NodeExecutionRow) -> NodeExecutionRow:
        """Insert a node execution, or return the one a concurrent event inserted first."""
        try:
            with self._s.begin_nested():
                self._s.add(row)
        except IntegrityError:
            existing = self.get(row.execution_id, row.node_id)
            if existing is None:
                raise
            return existing
        return row

    def page(
        self,
        execution_id: int,
        parent_id: int | None,
        query: ListQuery,
        *,
        all_levels: bool = False,
    ) -> tuple[list[NodeExecutionRow], str]:
        """A page of node executions of an execution.

        Args:
            execution_id: The execution's row id.
            parent_id: Row id of the parent node whose children are listed; None for the
                top level.
            query: Filters, sort and paging.
            all_levels: List nodes at every level (``parent_id`` is ignored).

        Returns:
            The rows and the next page's token.
        """
        columns = {
            "created_at": NodeExecutionRow.created_at,
            "node_id": NodeExecutionRow.node_id,
            "phase": NodeExecutionRow.phase,
            "started_at": NodeExecutionRow.started_at,
        }
        stmt: Select[Any] = select(NodeExecutionRow).where(
            NodeExecutionRow.execution_id == execution_id
        )
        if all_levels:
            pass
        elif parent_id is None:
            stmt = stmt.where(NodeExecutionRow.parent_id.is_(None))
        else:
            stmt = stmt.where(NodeExecutionRow.parent_id == parent_id)
        stmt = _apply_filters(stmt, query.filters, columns, "node executions")
        return _paged(self._s, NodeExecutionRow, stmt, query, columns)

    def flush(self) -> None:
        """Write pending changes of loaded rows now."""
        self._s.flush()


class TaskExecutionRepo:
    """Task executions (attempts)."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def get(
        self, node_execution_id: int, task: tuple[str, str, str, str], retry_attempt: int
    ) -> TaskExecutionRow | None:
        """One attempt of a task in a node execution, or None."""
        return self._s.scalars(
            select(TaskExecutionRow).where(
                TaskExecutionRow.node_execution_id == node_execution_id,
                TaskExecutionRow.task_project == task[0],
                TaskExecutionRow.task_domain == task[1],
                TaskExecutionRow.task_name == task[2],
                TaskExecutionRow.task_version == task[3],
                TaskExecutionRow.retry_attempt == retry_attempt,
            )
        ).first()

    def for_nodes(
        self, node_execution_ids: Sequence[int]
    ) -> dict[tuple[int, tuple[str, str, str, str], int], TaskExecutionRow]:
        """Every attempt of these node executions (one query), by (node row id, task, attempt)."""
        if not node_execution_ids:
            return {}
        rows = self._s.scalars(
            select(TaskExecutionRow).where(
                TaskExecutionRow.node_execution_id.in_(list(node_execution_ids))
            )
        )
        return {
            (
                row.node_execution_id,
                (row.task_project, row.task_domain, row.task_name, row.task_version),
                row.retry_attempt,
            ): row
            for row in rows
        }

    def insert(self, row: TaskExecutionRow) -> TaskExecutionRow:
        """Insert a task execution now (its id is set), without a savepoint.

        As :meth:`NodeExecutionRepo.insert`: for callers holding the execution's row lock.
        """
        self._s.add(row)
        self._s.flush([row])
        return row

    def add(self, row: TaskExecutionRow) -> TaskExecutionRow:
        """Insert a task execution, or return the one a concurrent event inserted first."""
        try:
            with self._s.begin_nested():
                self._s.add(row)
        except IntegrityError:
            existing = self.get(
                row.node_execution_id,
                (row.task_project, row.task_domain, row.task_name, row.task_version),
                row.retry_attempt,
            )
            if existing is None:
                raise
            return existing
        return row

    def page(self, node_execution_id: int, query: ListQuery) -> tuple[list[TaskExecutionRow], str]:
        """A page of the attempts of a node execution."""
        columns = {
            "created_at": TaskExecutionRow.created_at,
            "retry_attempt": TaskExecutionRow.retry_attempt,
            "phase": TaskExecutionRow.phase,
        }
        stmt: Select[Any] = select(TaskExecutionRow).where(
            TaskExecutionRow.node_execution_id == node_execution_id
        )
        stmt = _apply_filters(stmt, query.filters, columns, "task executions")
        return _paged(self._s, TaskExecutionRow, stmt, query, columns)

    def flush(self) -> None:
        """Write pending changes of loaded rows now."""
        self._s.flush()


class EventRepo:
    """Dedupe records of applied events."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def record(
        self, entity: str, phase: int, phase_version: int, attempt: int, request_id: str, now: int
    ) -> bool:
        """Record an event as applied; False when it (or its request id) was applied before."""
        row = EventRecordRow(
            entity=entity,
            phase=phase,
            phase_version=phase_version,
            attempt=attempt,
            request_id=request_id or None,
            created_at=now,
        )
        try:
            with self._s.begin_nested():
                self._s.add(row)
        except IntegrityError:
            return False
        return True

    def known(
        self, request_ids: Sequence[str], entities: Sequence[str]
    ) -> tuple[set[str], set[tuple[str, int, int, int]]]:
        """Which of these request ids, and which events of these entities, were recorded.

        Returns:
            The recorded request ids among ``request_ids``, and the (entity, phase,
            phase_version, attempt) keys recorded for ``entities``.
        """
        ids: set[str] = set()
        wanted = [r for r in request_ids if r]
        if wanted:
            ids = set(
                self._s.scalars(
                    select(EventRecordRow.request_id).where(EventRecordRow.request_id.in_(wanted))
                )
            )  # type: ignore[arg-type]
        keys: set[tuple[str, int, int, int]] = set()
        if entities:
            keys = {
                (e, p, v, a)
                for e, p, v, a in self._s.execute(
                    select(
                        EventRecordRow.entity,
                        EventRecordRow.phase,
                        EventRecordRow.phase_version,
                        EventRecordRow.attempt,
                    ).where(EventRecordRow.entity.in_(list(entities)))
                )
            }
        return ids, keys

    def record_many(self, records: Sequence[dict[str, Any]]) -> None:
        """Insert event records in one statement, without savepoints.

        The caller checked them against :meth:`known` under the execution's row lock; a
        record that exists anyway fails the transaction with a duplicate key.

        Args:
            records: Column values (entity, phase, phase_version, attempt, request_id,
                created_at) of each record.
        """
        if records:
            self._s.execute(insert(EventRecordRow), list(records))


class OutboxRepo:
    """Messages to propeller awaiting delivery."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def add(
        self, kind: str, execution_id: int, payload: bytes, now: int, *, held: bool = False
    ) -> None:
        """Queue a message; the dispatcher delivers it after the transaction commits.

        A ``held`` message waits (for a quota slot) until :meth:`release` lets it go.
        """
        self._s.execute(
            _INSERT_OUTBOX,
            {
                "kind": kind,
                "execution_id": execution_id,
                "payload": payload,
                "created_at": now,
                "attempts": 0,
                "next_attempt_at": HELD if held else 0,
                "last_error": "",
            },
        )

    def release(self, execution_id: int) -> None:
        """Let the held messages of an execution go out now."""
        self._s.execute(
            update(OutboxRow)
            .where(OutboxRow.execution_id == execution_id, OutboxRow.next_attempt_at == HELD)
            .values(next_attempt_at=0)
        )

    def drop_held(self, execution_id: int) -> None:
        """Forget the held messages of an execution (it was terminated while queued)."""
        self._s.execute(
            delete(OutboxRow).where(
                OutboxRow.execution_id == execution_id, OutboxRow.next_attempt_at == HELD
            )
        )

    def due(self, now: int, limit: int) -> list[OutboxRow]:
        """Undelivered messages whose next attempt is due, oldest first."""
        return list(
            self._s.scalars(
                select(OutboxRow)
                .where(OutboxRow.delivered_at.is_(None), OutboxRow.next_attempt_at <= now)
                .order_by(OutboxRow.id)
                .limit(limit)
            )
        )

    def claim(self, row_id: int, now: int, lease_until: int) -> bool:
        """Take a message for one delivery attempt; False when another replica took it.

        The conditional update is the claim: it moves ``next_attempt_at`` past the lease so
        that no other dispatcher picks the message while this one delivers it.
        """
        result = self._s.execute(
            update(OutboxRow)
            .where(
                OutboxRow.id == row_id,
                OutboxRow.delivered_at.is_(None),
                OutboxRow.next_attempt_at <= now,
            )
            .values(next_attempt_at=lease_until, attempts=OutboxRow.attempts + 1)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def delivered(self, row_id: int, now: int) -> None:
        """Mark a message delivered."""
        self._s.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row_id, OutboxRow.delivered_at.is_(None))
            .values(delivered_at=now, last_error="")
        )

    def failed(self, row_id: int, retry_at: int, error: str) -> None:
        """Record a failed attempt and when to try again."""
        self._s.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row_id)
            .values(next_attempt_at=retry_at, last_error=error[:2000])
        )

    def pending_count(self) -> int:
        """Messages not yet delivered."""
        return int(
            self._s.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.delivered_at.is_(None), OutboxRow.next_attempt_at < HELD)
            )
            or 0
        )

    def get(self, row_id: int) -> OutboxRow | None:
        """The message with this id, or None."""
        return self._s.get(OutboxRow, row_id)


class ScheduleRepo:
    """Schedule state, scheduled runs and leases."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def state(self, project: str, domain: str, lp_name: str) -> ScheduleStateRow | None:
        """Where the schedule of a launch plan name stands, or None."""
        return self._s.get(ScheduleStateRow, (project, domain, lp_name))

    def save_state(self, row: ScheduleStateRow) -> None:
        """Insert or update a schedule state row."""
        self._s.merge(row)
        self._s.flush()

    def drop_state(self, project: str, domain: str, lp_name: str) -> None:
        """Forget a schedule (its launch plan was deactivated)."""
        self._s.execute(
            delete(ScheduleStateRow).where(
                ScheduleStateRow.project == project,
                ScheduleStateRow.domain == domain,
                ScheduleStateRow.lp_name == lp_name,
            )
        )

    def add_run(self, row: ScheduleRunRow) -> bool:
        """Record a scheduled run; False when that scheduled time already has one."""
        try:
            with self._s.begin_nested():
                self._s.add(row)
        except IntegrityError:
            return False
        return True

    def runs(self, project: str, domain: str, lp_name: str) -> list[ScheduleRunRow]:
        """Every recorded run of a launch plan name, by scheduled time."""
        return list(
            self._s.scalars(
                select(ScheduleRunRow)
                .where(
                    ScheduleRunRow.project == project,
                    ScheduleRunRow.domain == domain,
                    ScheduleRunRow.lp_name == lp_name,
                )
                .order_by(ScheduleRunRow.scheduled_at)
            )
        )

    def acquire_lease(self, name: str, holder: str, now: int, until: int) -> bool:
        """Take or renew the lease ``name`` for ``holder``; False while another holds it."""
        result = self._s.execute(
            update(LeaseRow)
            .where(
                LeaseRow.name == name,
                or_(LeaseRow.holder == holder, LeaseRow.expires_at < now),
            )
            .values(holder=holder, expires_at=until)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            return True
        try:
            with self._s.begin_nested():
                self._s.add(LeaseRow(name=name, holder=holder, expires_at=until))
        except IntegrityError:
            return False
        return True

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up, so that another replica takes over at once."""
        self._s.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))


SIGNAL_COLUMNS: dict[str, Any] = {
    "signal_id": SignalRow.signal_id,
    "created_at": SignalRow.created_at,
    "set_at": SignalRow.set_at,
}


class SignalRepo:
    """Signals of executions."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def get(
        self, project: str, domain: str, execution_name: str, signal_id: str, *, lock: bool = False
    ) -> SignalRow | None:
        """One signal, or None; ``lock`` holds the row until the transaction ends."""
        stmt = select(SignalRow).where(
            SignalRow.project == project,
            SignalRow.domain == domain,
            SignalRow.execution_name == execution_name,
            SignalRow.signal_id == signal_id,
        )
        if lock:
            stmt = stmt.with_for_update()
        return self._s.scalars(stmt).first()

    def add(self, row: SignalRow) -> SignalRow:
        """Insert a signal, or return the one a concurrent caller inserted first."""
        try:
            with self._s.begin_nested():
                self._s.add(row)
        except IntegrityError:
            existing = self.get(row.project, row.domain, row.execution_name, row.signal_id)
            if existing is None:
                raise
            return existing
        return row

    def page(
        self, project: str, domain: str, execution_name: str, query: ListQuery
    ) -> tuple[list[SignalRow], str]:
        """A page of the signals of an execution."""
        stmt: Select[Any] = select(SignalRow).where(
            SignalRow.project == project,
            SignalRow.domain == domain,
            SignalRow.execution_name == execution_name,
        )
        stmt = _apply_filters(stmt, query.filters, SIGNAL_COLUMNS, "signals")
        return _paged(self._s, SignalRow, stmt, query, SIGNAL_COLUMNS)

    def flush(self) -> None:
        """Write pending changes of loaded rows now."""
        self._s.flush()


def _entity_columns(model: Any) -> dict[str, Any]:
    return {
        "created_at": model.created_at,
        "name": model.name,
        "version": model.version,
    }


class Repos:
    """Every repository, bound to one session (one transaction)."""

    def __init__(self, session: Session, *, is_sqlite: bool) -> None:
        self.session = session
        self.is_sqlite = is_sqlite
        self.projects = ProjectRepo(session)
        self.tasks = EntityRepo(session, TaskRow, _entity_columns(TaskRow))
        self.workflows = EntityRepo(session, WorkflowRow, _entity_columns(WorkflowRow))
        lp_columns = _entity_columns(LaunchPlanRow) | {
            "state": LaunchPlanRow.state,
            "workflow_name": LaunchPlanRow.workflow_name,
        }
        self.launch_plans = LaunchPlanRepo(session, LaunchPlanRow, lp_columns)
        self.bundles = BundleRepo(session)
        self.executions = ExecutionRepo(session)
        self.node_executions = NodeExecutionRepo(session)
        self.task_executions = TaskExecutionRepo(session)
        self.events = EventRepo(session)
        self.outbox = OutboxRepo(session)
        self.schedules = ScheduleRepo(session)
        self.signals = SignalRepo(session)

    def add(self, row: Base) -> None:
        """Stage a new row of any table."""
        self.session.add(row)

    def flush(self) -> None:
        """Write staged changes now (to learn generated ids)."""
        self.session.flush()

    def lock_quota(self, project: str, domain: str) -> None:
        """Serialize quota decisions of one project+domain until the transaction ends.

        On PostgreSQL a transaction-scoped advisory lock keyed by the pair; SQLite already
        serializes writers (transactions begin IMMEDIATE).
        """
        if not self.is_sqlite:
            self.session.execute(
                select(func.pg_advisory_xact_lock(func.hashtext(project + "/" + domain)))
            )
