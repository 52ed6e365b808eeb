"""Closed months of the audit log as JSON-lines segments, verifiable offline (``verify_audit --segment``).

A segment is the contiguous run of events whose ``at`` falls in one calendar month (UTC), in sequence
order, with the signed checkpoints that fall inside it. Line 1 is a header, then one line per event, then
one line per checkpoint::

    {"segment": {"format": "rcm-audit-segment", "version": 1, "month": "2026-10", "first_sequence": 1,
                 "last_sequence": 41230, "prev_hash": "000…", "events": 41230, "public_key": "<base64>"}}
    {"event": {"id": "…", "sequence": 1, "at": "2026-10-01T00:00:03.120512Z", …, "hash": "…"}}
    {"checkpoint": {"sequence": 40000, "hash": "…", "at": "2026-10-31T23:00:00Z", "signature": "…"}}

Events carry every hashed column exactly as hashed (``at`` with microseconds, ``detail`` as JSON), so the
chain can be recomputed from the file alone with ``AUDIT_HMAC_KEY``; the checkpoints with the public key.
Consecutive segments link: a segment's ``prev_hash`` is the previous segment's last hash.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import checkpoints as signed
from .chain import GENESIS_HASH, HASHED_FIELDS, ROW_FIELDS
from .models import AuditCheckpoint, AuditEvent
from .verification import CHECKPOINT_HASH, CHECKPOINT_SIGNATURE, REASONS, link_verdict

FORMAT = "rcm-audit-segment"
MALFORMED = "segment_malformed"
INCOMPLETE = "segment_incomplete"
UNLINKED = "segment_not_linked"
SEGMENT_REASONS = {
    **REASONS,
    MALFORMED: "the file is not an audit segment (a line is not valid JSON or lacks a field)",
    INCOMPLETE: "the segment ends before the last sequence its header announces (lines removed)",
    UNLINKED: "the segment's prev_hash is not the previous segment's last hash "
    "(a segment missing or replaced)",
}


def month_start(year: int, month: int) -> datetime.datetime:
    return datetime.datetime(year, month, 1, tzinfo=datetime.UTC)


def next_month(moment: datetime.datetime) -> datetime.datetime:
    return month_start(moment.year + (moment.month == 12), moment.month % 12 + 1)


def parse_month(text: str) -> datetime.datetime:
    """``YYYY-MM`` → the first instant of that month (UTC); ``ValueError`` otherwise."""
    try:
        moment = datetime.datetime.strptime(text, "%Y-%m")
    except (TypeError, ValueError):
        raise ValueError("expected a month as YYYY-MM") from None
    return month_start(moment.year, moment.month)


def _first_sequence_from(moment: datetime.datetime) -> int | None:
    return (
        AuditEvent.objects.filter(at__gte=moment)
        .order_by("sequence")
        .values_list("sequence", flat=True)
        .first()
    )


def month_bounds(start: datetime.datetime) -> tuple[int, int] | None:
    """The (first, last) sequence of the month starting at ``start``; None when it has no event."""
    first = _first_sequence_from(start)
    if first is None:
        return None
    following = _first_sequence_from(next_month(start))
    if following is None:
        last = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    else:
        last = following - 1
    return (first, last) if last >= first else None


def closed_months(before: datetime.datetime, now: datetime.datetime) -> list[datetime.datetime]:
    """Months with events, from the log's first one up to (not including) ``before``; only closed months."""
    if before > month_start(now.year, now.month):
        raise ValueError("only closed months can be archived: --before may be at most the current month")
    first = AuditEvent.objects.order_by("sequence").values_list("at", flat=True).first()
    if first is None:
        return []
    months, moment = [], month_start(first.year, first.month)
    while moment < before:
        months.append(moment)
        moment = next_month(moment)
    return months


def _event_line(values: dict) -> str:
    event = {name: values[name] for name in ("id", *HASHED_FIELDS, "hash")}
    event["id"] = str(event["id"])
    event["at"] = values["at"].astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps({"event": event}, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def write_segment(
    directory: Path, start: datetime.datetime, *, chunk_size: int = 5000
) -> tuple[Path, int] | None:
    """Write the month starting at ``start`` as ``audit-YYYY-MM.jsonl`` in ``directory`` (atomically: a
    temporary file renamed at the end); returns (path, events), or None when the month has no event."""
    bounds = month_bounds(start)
    if bounds is None:
        return None
    first, last = bounds
    previous = AuditEvent.objects.filter(sequence=first - 1).values_list("hash", flat=True).first()
    header = {
        "format": FORMAT,
        "version": 1,
        "month": start.strftime("%Y-%m"),
        "first_sequence": first,
        "last_sequence": last,
        "prev_hash": previous or GENESIS_HASH,
        "events": last - first + 1,
        "public_key": signed.public_key_document()["public_key"],
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"audit-{header['month']}.jsonl"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    rows = (
        AuditEvent.objects.filter(sequence__gte=first, sequence__lte=last)
        .order_by("sequence")
        .values_list(*ROW_FIELDS)
        .iterator(chunk_size=chunk_size)
    )
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"segment": header}, separators=(",", ":"), sort_keys=True) + "\n")
        for row in rows:
            handle.write(_event_line(dict(zip(ROW_FIELDS, row, strict=True))) + "\n")
        for checkpoint in AuditCheckpoint.objects.filter(sequence__gte=first, sequence__lte=last).order_by(
            "id"
        ):
            line = {"checkpoint": signed.as_served(checkpoint)}
            handle.write(json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path, header["events"]


@dataclass
class SegmentCheck:
    """The outcome of verifying one segment file."""

    ok: bool
    path: str
    month: str = ""
    first_sequence: int = 0
    last_sequence: int = 0
    last_hash: str = ""
    events: int = 0
    checkpoints: int = 0
    bad_sequence: int | None = None
    reason: str | None = None

    def summary(self) -> str:
        if self.ok:
            return (
                f"segment {self.path} intact: month {self.month}, {self.events} events, sequence "
                f"{self.first_sequence}..{self.last_sequence}, {self.checkpoints} signed checkpoints, "
                f"last hash {self.last_hash}"
            )
        where = f" at sequence {self.bad_sequence}" if self.bad_sequence is not None else ""
        return f"segment {self.path} broken{where}: {SEGMENT_REASONS[self.reason]}"


def _lines(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _event_values(event: dict) -> dict:
    values = dict(event)
    values["at"] = datetime.datetime.strptime(event["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.UTC
    )
    return values


def verify_segment(path: Path, *, previous_hash: str | None = None, outside: list[dict] = ()) -> SegmentCheck:
    """Recompute a segment's chain from the file alone (``AUDIT_HMAC_KEY`` and the checkpoint signing key).

    ``previous_hash``: the previous segment's last hash, when segments are verified in a row.
    ``outside``: checkpoints from elsewhere (a partner's copy); those inside the segment's range are checked.
    """
    check = SegmentCheck(ok=False, path=str(path))
    try:
        return _verify_segment(path, check, previous_hash, list(outside))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, signed.MalformedCheckpoint):
        check.reason = MALFORMED
        return check


def _verify_segment(
    path: Path, check: SegmentCheck, previous_hash: str | None, outside: list
) -> SegmentCheck:
    lines = _lines(path)
    header = next(lines)["segment"]
    if header.get("format") != FORMAT or header.get("version") != 1:
        check.reason = MALFORMED
        return check
    check.month = header["month"]
    check.first_sequence = int(header["first_sequence"])
    expected, prev = check.first_sequence, header["prev_hash"]
    if (previous_hash is not None and prev != previous_hash) or (
        check.first_sequence == 1 and prev != GENESIS_HASH
    ):
        check.reason, check.bad_sequence = UNLINKED, check.first_sequence
        return check
    hashes: dict[int, str] = {}
    pending: list[dict] = []
    allow_legacy = True
    key = signed.public_key_bytes()
    for line in lines:
        if "checkpoint" in line:
            pending.append(signed.parse(line["checkpoint"]))
            continue
        values = _event_values(line["event"])
        sequence = values["sequence"]
        reason, allow_legacy = link_verdict(values, expected, prev, allow_legacy)
        if reason is not None:
            check.reason, check.bad_sequence = reason, sequence
            return check
        hashes[sequence] = values["hash"]
        prev = values["hash"]
        expected += 1
        check.events += 1
    check.last_sequence, check.last_hash = expected - 1, prev
    if check.last_sequence != int(header["last_sequence"]) or check.events != int(header["events"]):
        check.reason, check.bad_sequence = INCOMPLETE, expected
        return check
    pending += [c for c in outside if check.first_sequence <= c["sequence"] <= check.last_sequence]
    for checkpoint in pending:
        if not signed.signature_valid(checkpoint, key):
            check.reason, check.bad_sequence = CHECKPOINT_SIGNATURE, checkpoint["sequence"]
            return check
        if hashes.get(checkpoint["sequence"]) != checkpoint["hash"]:
            check.reason, check.bad_sequence = CHECKPOINT_HASH, checkpoint["sequence"]
            return check
        check.checkpoints += 1
    check.ok = True
    return check
