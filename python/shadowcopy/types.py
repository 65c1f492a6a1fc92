"""What the library hands back, as frozen dataclasses.

Each mirrors one structure of lib/shadowcopy.h (same field names; C
strings become str, "" where the header says so).
"""
from dataclasses import dataclass
from typing import Optional

from ._lib import UINT64_MAX, text


@dataclass(frozen=True)
class Server:
    protocol_major: int
    protocol_minor: int
    version: str
    offline: bool
    where: str


@dataclass(frozen=True)
class Snapshot:
    id: int
    name: str
    type: str                   # "snapshot", "checkpoint", "clone"
    base: str                   # a clone's base snapshot, or ""
    uuid: str
    set: str                    # its set's UUID, or ""
    created: str                # ISO 8601 UTC
    epoch: int
    valid: bool
    reason: str                 # why it is invalid, or ""
    auto_release: bool
    used_bytes: int
    discarded_bytes: int
    meta_bytes: int


@dataclass(frozen=True)
class Revert:
    state: str                  # none, running, paused, stopped
    target: str
    saved: str
    bytes_done: int
    bytes_todo: int
    rate: int                   # bytes/s; 0: unbounded
    eta_s: Optional[int]        # None: unknown
    errors: int
    target_invalid: bool
    error: str
    ended: str
    plan: Optional["RevertPlan"]  # a dry run's plan, or None


@dataclass(frozen=True)
class RevertPlan:
    bytes_to_write: int
    space_needed: int
    limit: int                  # 0: unbounded
    fits: bool


@dataclass(frozen=True)
class VolumeInfo:
    volume_size: int
    chunk_size: int
    diff_used_bytes: int
    diff_file_bytes: int
    diff_max: int               # 0: unbounded
    snapshots: int
    checkpoints: int
    copies: int
    epoch: int
    max_snapshots: int
    max_checkpoints: int
    invalid: int
    damaged: int
    dropped: int
    full_failures: int
    discarded_bytes: int
    on_full: str
    origin: str
    last_drop: str
    last_drop_reason: str
    have_holds: bool
    holds: int
    hold_last_ns: int
    hold_p50_ns: int
    hold_p99_ns: int
    hold_max_ns: int
    failed: bool
    health_message: str
    have_health: bool           # the server said (older ones do not)
    failed_since: str
    failed_errno: str
    failed_write: str
    invalidated: int
    retries: int
    retry_every_ms: int
    recoveries: int
    recorded: bool              # the failure is recorded in the area
    last_retry: str
    last_retry_errno: str
    last_retry_write: str
    recovered: str              # when it last recovered, or ""
    revert: Optional[Revert]    # a revert in progress, or None
    listen: str                 # the exports' NBD URI, or ""


@dataclass(frozen=True)
class DiffSide:
    name: str                   # "live" for the live volume
    type: str                   # snapshot, checkpoint, live
    id: int                     # 0 for live
    uuid: str                   # "" for live
    epoch: int


@dataclass(frozen=True)
class DiffHeader:
    volume: str                 # the volume's UUID
    chunk_size: int
    volume_size: int
    from_: DiffSide
    to: DiffSide
    bytes: int                  # the sum of the extents' lengths


@dataclass(frozen=True)
class Scrub:
    state: str                  # none, running, done, stopped
    copies_checked: int
    copies_total: int
    bytes_checked: int
    bytes_total: int
    damaged: int
    freed: int
    read_errors: int
    rate: int
    started: str
    finished: str
    error: str                  # why it stopped, or ""


@dataclass(frozen=True)
class Dropped:
    """A snapshot the space policy dropped."""
    name: str
    created: str
    dropped_at: str
    reason: str


@dataclass(frozen=True)
class WriterResult:
    writer: str
    phase: str                  # identify, prepare, freeze, thaw, ...
    result: str                 # "ok", "exit status 3", "timed out"
    output: str
    when: int                   # Unix seconds
    frozen_ns: int              # thaw: how long it was frozen, or 0


@dataclass(frozen=True)
class WriterKind:
    prefix: str
    argument: str
    needs: str
    does: str


def _convert(c, cls, skip=()):
    """cls from ctypes structure c, field by field."""
    values = {}
    for name, _ in c._fields_:
        if name in skip:
            continue
        v = getattr(c, name)
        if isinstance(v, bytes) or v is None:
            v = text(v)
        values[name] = v
    return cls(**values)


def server_from(c):
    return _convert(c, Server)


def snapshot_from(c):
    return _convert(c, Snapshot)


def revert_from(c):
    plan = None
    if c.have_plan:
        plan = RevertPlan(c.plan_bytes_to_write, c.plan_space_needed,
                          c.plan_limit, c.plan_fits)
    values = {}
    for name, _ in c._fields_:
        if name == "have_plan" or name.startswith("plan_"):
            continue
        v = getattr(c, name)
        values[name] = text(v) if isinstance(v, bytes) else v
    if values["eta_s"] == UINT64_MAX:
        values["eta_s"] = None
    return Revert(plan=plan, **values)


def dropped_from(c):
    return _convert(c, Dropped)


def volume_from(c):
    values = {name: getattr(c, name) for name, _ in c._fields_}
    for k, v in values.items():
        if isinstance(v, bytes):
            values[k] = text(v)
    values["revert"] = revert_from(c.revert) if c.have_revert else None
    del values["have_revert"]
    return VolumeInfo(**values)


def diff_side_from(c):
    return _convert(c, DiffSide)


def diff_header_from(c):
    return DiffHeader(volume=text(c.volume), chunk_size=c.chunk_size,
                      volume_size=c.volume_size,
                      from_=diff_side_from(getattr(c, "from")),
                      to=diff_side_from(c.to), bytes=c.bytes)


def scrub_from(c):
    return _convert(c, Scrub)


def writer_result_from(c):
    return _convert(c, WriterResult)


def writer_kind_from(c):
    return _convert(c, WriterKind)
