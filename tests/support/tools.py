"""Tools the ORM and agent tests share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from nodellm_orm import Tool


class Add(Tool):
    name = "add"
    description = "Add two numbers"

    class Params(BaseModel):
        a: int
        b: int

    def execute(self, params: Any) -> str:
        return str(params.a + params.b)


class Boom(Tool):
    name = "boom"
    description = "Always fails"

    def execute(self, params: Any) -> str:
        raise RuntimeError("kaput")
