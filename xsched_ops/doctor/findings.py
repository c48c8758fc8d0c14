"""What a doctor check returns: findings with a severity, an explanation and a fix."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_serializer

from xsched_ops.doctor.check_ids import CheckId
from xsched_ops.doctor.finding_data import FindingData

Severity = Literal["ok", "warn", "fail", "crash", "info"]

SEVERITY_ORDER = {"ok": 0, "info": 0, "warn": 1, "fail": 2, "crash": 2}


class Finding(BaseModel):
    id: CheckId
    area: str
    severity: Severity
    title: str
    detail: str = ""
    fix: str = ""
    commands: list[str] = Field(default_factory=list)
    # One model per kind of finding (finding_data); written as the fields its maker set.
    data: FindingData = Field(default_factory=FindingData)

    @field_serializer("data")
    def _data_as_written(self, data: FindingData) -> dict[str, Any]:
        return data.as_dict()

    @property
    def failed(self) -> bool:
        return self.severity in ("fail", "crash")


def _data(data: FindingData | None, extra: dict[str, Any]) -> FindingData:
    """A typed model, or (for kinds not typed yet) the keywords as named extra keys."""
    if data is not None:
        return data.model_copy(update=extra) if extra else data
    return FindingData(**extra)


def ok(check_id: CheckId, area: str, title: str, detail: str = "", data: FindingData | None = None,
       **extra: Any) -> Finding:
    return Finding(id=check_id, area=area, severity="ok", title=title, detail=detail, data=_data(data, extra))


def warn(check_id: CheckId, area: str, title: str, detail: str = "", fix: str = "",
         commands: list[str] | None = None, data: FindingData | None = None, **extra: Any) -> Finding:
    return Finding(id=check_id, area=area, severity="warn", title=title, detail=detail, fix=fix,
                   commands=commands or [], data=_data(data, extra))


def fail(check_id: CheckId, area: str, title: str, detail: str = "", fix: str = "",
         commands: list[str] | None = None, data: FindingData | None = None, **extra: Any) -> Finding:
    return Finding(id=check_id, area=area, severity="fail", title=title, detail=detail, fix=fix,
                   commands=commands or [], data=_data(data, extra))


def info(check_id: CheckId, area: str, title: str, detail: str = "", data: FindingData | None = None,
         **extra: Any) -> Finding:
    return Finding(id=check_id, area=area, severity="info", title=title, detail=detail, data=_data(data, extra))
