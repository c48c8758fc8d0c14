"""What a doctor check returns: findings with a severity, an explanation and a fix."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Severity = Literal["ok", "warn", "fail", "crash", "info"]

SEVERITY_ORDER = {"ok": 0, "info": 0, "warn": 1, "fail": 2, "crash": 2}


class Finding(BaseModel):
    id: str
    area: str
    severity: Severity
    title: str
    detail: str = ""
    fix: str = ""
    commands: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.severity in ("fail", "crash")


def ok(check_id: str, area: str, title: str, detail: str = "", **data: Any) -> Finding:
    return Finding(id=check_id, area=area, severity="ok", title=title, detail=detail, data=data)


def warn(check_id: str, area: str, title: str, detail: str = "", fix: str = "",
         commands: list[str] | None = None, **data: Any) -> Finding:
    return Finding(id=check_id, area=area, severity="warn", title=title, detail=detail, fix=fix,
                   commands=commands or [], data=data)


def fail(check_id: str, area: str, title: str, detail: str = "", fix: str = "",
         commands: list[str] | None = None, **data: Any) -> Finding:
    return Finding(id=check_id, area=area, severity="fail", title=title, detail=detail, fix=fix,
                   commands=commands or [], data=data)


def info(check_id: str, area: str, title: str, detail: str = "", **data: Any) -> Finding:
    return Finding(id=check_id, area=area, severity="info", title=title, detail=detail, data=data)
