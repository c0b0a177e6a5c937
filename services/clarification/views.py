"""The typed answers of clarification's HTTP API (its OpenAPI schemas). Extra keys pass through: a
command answers the event it recorded, whose fields differ by command."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def _d(zh: str, en: str, **field: Any) -> Any:
    return Field(description=f"{zh}。{en}", **field)


class MatterAnswer(BaseModel):
    """What a command on a 澄清事项 answers: the matter's state and the event it recorded, with the
    event's own fields beside them."""

    model_config = ConfigDict(extra="allow")

    case_id: str = _d("澄清事项编号", "The matter id")
    state: str = _d("命令之后的状态", "The state after the command")
    version: int = _d("事项的版本（已记录的事件数）", "The matter's version (events recorded)")
    event: str = _d("记录的事件类型", "The type of the event recorded")
