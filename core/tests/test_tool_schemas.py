"""Tool schemas from type hints (through pydantic) and argument validation before a tool runs."""

from __future__ import annotations

import enum
from typing import Literal, Optional, TypedDict

import pydantic
import pytest

import verifiers as vf
from verifiers.testing import Reply, ToolCall
from verifiers.utils.tool_utils import ToolArgumentError, validate_tool_arguments


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Location(TypedDict):
    city: str
    country: str


class Window(pydantic.BaseModel):
    start: int
    end: int = 10


def forecast(location: Location, days: int, unit: Unit = Unit.CELSIUS,
             window: Optional[Window] = None,  # noqa: UP045 (typing.Optional on purpose)
             detail: Literal["short", "long"] = "short",
             tags: list[str] | None = None) -> str:
    """Weather forecast for a place.

    Args:
        location: where.
        days: how many days ahead.
        unit: temperature unit.
        window: hours of the day to cover.
        detail: how much to say.
        tags: labels to attach.
    """
    hours = f"{window.start}-{window.end}" if window else "all day"
    return f"{location['city']}/{days}/{unit.value}/{hours}/{detail}/{tags}"


def _params(func):
    return vf.convert_func_to_oai_tool(func)["function"]["parameters"]


def test_enum_typeddict_model_optional_and_defaults_get_types():
    params = _params(forecast)
    props = params["properties"]
    assert params["required"] == ["location", "days"]
    assert list(props) == ["location", "days", "unit", "window", "detail", "tags"]
    assert props["location"]["type"] == "object"
    assert props["location"]["properties"] == {"city": {"type": "string"},
                                               "country": {"type": "string"}}
    assert sorted(props["location"]["required"]) == ["city", "country"]
    assert props["location"]["description"] == "where."
    assert props["days"] == {"type": "integer", "description": "how many days ahead."}
    assert props["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert props["unit"]["type"] == "string"
    assert props["unit"]["default"] == "celsius"
    window = next(o for o in props["window"]["anyOf"] if o.get("type") != "null")
    assert window["properties"] == {"start": {"type": "integer"},
                                    "end": {"type": "integer", "default": 10}}
    assert window["required"] == ["start"]
    assert {"type": "null"} in props["window"]["anyOf"]
    assert props["window"]["default"] is None
    assert props["detail"]["enum"] == ["short", "long"] and props["detail"]["default"] == "short"
    assert {"type": "array", "items": {"type": "string"}} in props["tags"]["anyOf"]
    text = repr(params)
    assert "$ref" not in text and "$defs" not in text and "title" not in text


class Filters(TypedDict, total=False):
    colour: str
    size: int


def search(filters: Filters, limit: int = 5) -> str:
    return str(filters)


def test_typeddict_with_optional_keys_marks_only_required_ones():
    prop = _params(search)["properties"]["filters"]
    assert prop["properties"] == {"colour": {"type": "string"}, "size": {"type": "integer"}}
    assert "required" not in prop
    assert validate_tool_arguments(search, {"filters": {"size": "3"}}) == {"filters": {"size": 3}}


class Node(pydantic.BaseModel):
    label: str
    children: list[Node] = []


def walk(tree: Node) -> int:
    return 1


def test_recursive_models_keep_their_definitions():
    params = _params(walk)
    assert params["properties"]["tree"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert params["$defs"]["Node"]["properties"]["label"] == {"type": "string"}
    tree = validate_tool_arguments(walk, {"tree": {"label": "a", "children": [{"label": "b"}]}})["tree"]
    assert tree.children[0].label == "b"


def test_untyped_unresolvable_and_unknown_hints_stay_untyped():
    class Opaque:
        pass

    class Local(TypedDict):
        x: int

    def tool(a, b: Opaque, c: Local, d: int = 1, *args, **kwargs) -> None:
        """Do it."""

    params = _params(tool)  # Opaque and Local are not resolvable from module scope
    assert params["properties"] == {"a": {}, "b": {}, "c": {}, "d": {"type": "integer", "default": 1}}
    assert params["required"] == ["a", "b", "c"]
    marker = Opaque()
    assert validate_tool_arguments(tool, {"a": 1, "b": marker, "c": {}, "extra": 2}) == {
        "a": 1, "b": marker, "c": {}, "extra": 2}


def test_arguments_are_coerced_to_the_hinted_types():
    args = validate_tool_arguments(forecast, {
        "location": {"city": "Oslo", "country": "NO"}, "days": "3", "unit": "fahrenheit",
        "window": {"start": 6}})
    assert args["days"] == 3
    assert args["unit"] is Unit.FAHRENHEIT
    assert isinstance(args["window"], Window) and args["window"].end == 10
    assert "detail" not in args  # not given: the function's own default applies
    assert forecast(**args) == "Oslo/3/fahrenheit/6-10/short/None"


def test_numbers_for_strings_are_accepted_as_text():
    def echo(text: str) -> str:
        return text

    assert validate_tool_arguments(echo, {"text": 12}) == {"text": "12"}


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"days": 1}, "location: missing (required)"),
    ({"location": {"city": "Oslo"}, "days": 1}, "location.country: missing (required)"),
    ({"location": {"city": "a", "country": "b"}, "days": "soon"}, "days: Input should be a valid integer"),
    ({"location": {"city": "a", "country": "b"}, "days": 1, "unit": "kelvin"},
     "unit: Input should be 'celsius' or 'fahrenheit' (got 'kelvin')"),
    ({"location": {"city": "a", "country": "b"}, "days": 1, "when": "now"},
     "when: not a parameter of this tool"),
])
def test_bad_arguments_name_the_problem_and_the_parameters(arguments, expected):
    with pytest.raises(ToolArgumentError) as caught:
        validate_tool_arguments(forecast, arguments)
    message = str(caught.value)
    assert message.startswith("bad arguments for forecast: ")
    assert expected in message
    assert "Parameters: location, days, unit (optional)" in message
    assert "errors.pydantic.dev" not in message


def test_tool_env_validates_before_running_and_tells_the_model(make_scripted_server):
    ran = []

    def add(a: int, b: int) -> int:
        """Add two integers."""
        ran.append((a, b))
        return a + b

    calls = [ToolCall("add", {"a": "2", "b": 3}), ToolCall("add", {"a": "two", "b": 3})]
    server = make_scripted_server(script=[Reply(tool_calls=calls), Reply(content="5")])
    env = vf.ToolEnv(tools=[add], dataset=[{"question": "2+3?", "answer": "5"}],
                     rubric=vf.Rubric(funcs=[]))
    results = env.evaluate(server.client(), "m")
    tool_messages = [m["content"] for m in results["completions"][0] if m["role"] == "tool"]
    assert ran == [(2, 3)]  # the invalid call never reached the tool
    assert tool_messages[0] == "5"
    assert tool_messages[1].startswith("Error: bad arguments for add: a: Input should be a valid integer")
    assert results["states"][0]["tool_errors"] == 1
    assert server.requests[0]["tools"][0]["function"]["parameters"]["properties"]["a"] == {
        "type": "integer"}


def test_any_parameter_name_works():
    def odd(json: str, model_config: int, _private: bool = False, schema: str = "s") -> str:
        return f"{json}{model_config}{_private}{schema}"

    params = _params(odd)
    assert list(params["properties"]) == ["json", "model_config", "_private", "schema"]
    assert params["required"] == ["json", "model_config"]
    args = validate_tool_arguments(odd, {"json": "j", "model_config": "2", "_private": "true"})
    assert args == {"json": "j", "model_config": 2, "_private": True}
    with pytest.raises(ToolArgumentError, match="model_config: missing"):
        validate_tool_arguments(odd, {"json": "j"})


def test_unhashable_callables_are_tools_too():
    class Counter:
        __hash__ = None  # type: ignore[assignment]
        __name__ = "count"

        def __call__(self, n: int) -> int:
            return n

    assert validate_tool_arguments(Counter(), {"n": "4"}) == {"n": 4}
