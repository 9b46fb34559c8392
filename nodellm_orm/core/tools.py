"""Tools the model may call: a name, a description, a pydantic `Params` model and `execute`."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from .messages import ToolSpec


class Tool:
    """Subclass, declare `name`, `description`, a nested `Params` model, and `execute`.

    ```python
    class Weather(Tool):
        name = "get_weather"
        description = "Current weather for a city"

        class Params(BaseModel):
            city: str

        def execute(self, params: Params) -> str:
            return f"Sunny in {params.city}"
    ```

    `execute` may be sync or async and may return anything JSON-serialisable; strings are sent
    to the model as they are. Without `Params`, `execute` receives the raw argument dict.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel] | None] = None

    @classmethod
    def tool_name(cls) -> str:
        if cls.name:
            return cls.name
        # WeatherTool -> weather_tool, for tools that do not set a name.
        return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    @classmethod
    def spec(cls) -> ToolSpec:
        if cls.Params is not None:
            parameters = cls.Params.model_json_schema()
            parameters.pop("title", None)
        else:
            parameters = {"type": "object", "properties": {}}
        return ToolSpec(
            name=cls.tool_name(),
            description=cls.description or (inspect.getdoc(cls) or "").strip(),
            parameters=parameters,
        )

    def execute(self, params: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.execute is not implemented")

    async def call(self, arguments: dict[str, Any]) -> str:
        """Validate `arguments`, run `execute`, and render its result as text for the model."""
        params: Any = arguments
        if self.Params is not None:
            try:
                params = self.Params.model_validate(arguments)
            except ValidationError as exc:
                raise ValueError(f"invalid arguments for tool {self.tool_name()!r}: {exc}") from exc
        result = self.execute(params)
        if inspect.isawaitable(result):
            result = await result
        return render_result(result)


def render_result(result: Any) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return json.dumps(result, default=str, ensure_ascii=False)


def as_tool(tool: Tool | type[Tool]) -> Tool:
    if isinstance(tool, Tool):
        return tool
    if isinstance(tool, type) and issubclass(tool, Tool):
        return tool()
    raise TypeError(f"expected a Tool subclass or instance, got {tool!r}")
