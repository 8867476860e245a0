"""Where in tierwise.yaml a problem is: dotted key paths (`routes.fast.targets[1]`) mapped to line numbers, and
the `ConfigError`s that name file, line and path (pydantic's messages without the value, which may be a secret)."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tierwise.errors import ConfigError


def line_index(text: str) -> dict[str, int]:
    """Map dotted key paths (`routes.fast.targets[1]`) to 1-based line numbers."""
    index: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return index

    def walk(node: yaml.Node | None, path: str) -> None:
        if node is None:
            return
        index.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = f"{path}.{k.value}" if path else str(k.value)
                index[p] = k.start_mark.line + 1
                walk(v, p)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, f"{path}[{i}]")

    walk(root, "")
    return index


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _nearest_line(index: dict[str, int], path: str) -> int | None:
    while path:
        if path in index:
            return index[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None


def format_validation_error(err: ValidationError, *, file: str | None, prefix: str, index: dict[str, int],
                            model: type[BaseModel] | None = None) -> ConfigError:
    from tierwise.config_keys import unknown_key_message

    lines = []
    first_path = None
    for e in err.errors():
        path = _loc_to_path((prefix,) + tuple(e["loc"]) if prefix else tuple(e["loc"]))
        first_path = first_path or path
        line = _nearest_line(index, path)
        where = f"line {line}: " if line else ""
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = unknown_key_message(model, tuple(e["loc"]))
        msg = _with_hint(e, msg.removeprefix("Value error, "))
        if e["type"] in ("model_type", "model_attributes_type", "dict_type") and isinstance(e.get("input"), bool):
            msg = _switch_hint(model, tuple(e["loc"]), e["input"])
        lines.append(f"{where}{path}: {msg}")
    return ConfigError("invalid config:\n  " + "\n  ".join(lines), file=file, path=None if len(lines) > 1 else None)


def _switch_hint(model: type[BaseModel] | None, loc: tuple[Any, ...], value: bool) -> str:
    """A section written as true/false (`dashboard: true`): pydantic said "Input should be a valid dictionary or
    instance of DashboardConfig", a class name the user never wrote; say what to write instead."""
    from tierwise.config_keys import keys_at

    key = str(loc[-1]) if loc else "it"
    msg = "a section of settings, not true/false"
    if "enabled" in keys_at(model, loc):
        return msg + f": write `{key}: {{enabled: {str(value).lower()}}}`"
    return msg + (f": write its settings under it, `{key}: {{...}}`" if value else f": leave `{key}` out")


def _with_hint(e: Any, msg: str) -> str:
    """pydantic's message and what a newcomer most likely meant: the closest allowed value of a misspelt one
    (`locality: locla`), or, for a mapping or list that came as one word, the YAML slip behind it
    (`kind:openai`, no space after the colon). The value itself is never repeated: it may be a secret."""
    import difflib
    import re

    value = e.get("input")
    if e["type"] == "literal_error" and isinstance(value, str):
        near = difflib.get_close_matches(value, re.findall(r"'([^']*)'", str(e.get("ctx", {}).get("expected", ""))),
                                         n=1, cutoff=0.6)
        return msg + (f" (did you mean `{near[0]}`?)" if near else "")
    if e["type"] in ("model_type", "model_attributes_type", "dict_type") and isinstance(value, str) \
            and re.search(r"\w:[^\s/]", value):
        return msg + ", but got one word with a colon inside: YAML needs a space after the colon (`key: value`)"
    if e["type"] == "list_type" and isinstance(value, str):
        return msg + ": write one item as a list too, `[name]`"
    if e["type"] in ("dict_type", "model_type") and isinstance(value, list):
        return msg + ": write `name: {...}` entries under it, not a list of `- ` items"
    if isinstance(value, str) and re.search(r"\$[A-Za-z_]", value):
        return msg + " (only `${VAR}` is replaced from the environment: `$VAR` without braces is kept as written)"
    return msg


def located_error(msg: str, file: str | None, path: str, index: dict[str, int]) -> ConfigError:
    """A problem at `path`, with the line the path (or its nearest parent) is on."""
    line = _nearest_line(index, path)
    return ConfigError(f"{'line ' + str(line) + ': ' if line else ''}{path}: {msg}", file=file)
