"""Keys of tierwise.yaml (and ensemble files) that would otherwise be ignored without a word.

- An unknown key names the closest valid one (`contex_window` -> `context_window`): a validation error's
  location is walked through the pydantic model that was validated to the model holding the unknown key;
  its field names (and aliases) are the candidates.
- A key given twice in one mapping is an error naming both lines (`yaml.safe_load` keeps the last one, so
  a second `routes:` appended to a file silently dropped every route of the first)."""

from __future__ import annotations

import collections.abc
import difflib
import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel


def _members(tp: Any) -> list[Any]:
    """The types a value annotated `tp` may have (Optional, unions and Annotated unwrapped)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _members(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for a in typing.get_args(tp) for m in _members(a)]
    return [tp]


def _step(tp: Any, part: Any) -> list[Any]:
    """The types at `part` (a field name, dict key, list index or union tag) inside a value of type `tp`."""
    out: list[Any] = []
    for m in _members(tp):
        origin = typing.get_origin(m)
        if isinstance(m, type) and issubclass(m, BaseModel):
            fields = m.model_fields
            if isinstance(part, str):
                if part in fields:
                    out.append(fields[part].annotation)
                else:
                    out.extend(f.annotation for f in fields.values() if f.alias == part)
        elif origin in (dict, collections.abc.Mapping):
            kv = typing.get_args(m)
            if len(kv) == 2:
                out.append(kv[1])
        elif origin in (list, tuple, set, frozenset) and isinstance(part, int):
            args = [a for a in typing.get_args(m) if a is not Ellipsis]
            out.extend(args[:1] if origin is not tuple else args[part: part + 1] or args[:1])
    if not out and isinstance(part, str):  # a union member's tag in the location (pydantic names the member)
        out = [m for m in _members(tp) if getattr(m, "__name__", None) == part or
               (isinstance(m, type) and part.endswith(f"[{m.__name__}]"))]
    return out


def _keys(tp: Any) -> set[str]:
    keys: set[str] = set()
    for m in _members(tp):
        if isinstance(m, type) and issubclass(m, BaseModel):
            for name, f in m.model_fields.items():
                keys.add(f.alias or name)
    return keys


def keys_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> set[str]:
    """The keys the section at `loc` takes (empty when `loc` leads to no section of `model`)."""
    types_: list[Any] = [model] if model is not None else []
    for part in loc:
        types_ = [n for t in types_ for n in _step(t, part)]
    return set().union(*(_keys(t) for t in types_))


def closest_key(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str | None:
    """The valid key nearest the unknown one at `loc` (its last part), or None."""
    if model is None or not loc or not isinstance(loc[-1], str):
        return None
    candidates = keys_at(model, loc[:-1])
    match = difflib.get_close_matches(loc[-1], sorted(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_key_message(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str:
    """"unknown key", with the closest valid key when there is one."""
    near = closest_key(model, loc)
    return "unknown key" + (f" (did you mean `{near}`?)" if near else "")


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping (merge keys `<<` may still be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            first = seen.setdefault(key_node.value, key_node.start_mark.line + 1)
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key `{key_node.value}` (first on line {first}; the later one would "
                    "silently replace it)", key_node.start_mark)
        return super().construct_mapping(node, deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        # A plain scalar shaped like a date that is none (`2026-02-30`, an offset of `+25:00`) raised a bare
        # ValueError out of PyYAML: a stack trace from `tierwise doctor`, a failed call for an ensemble's YAML
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as e:
            raise yaml.constructor.ConstructorError(
                None, None, f"`{node.value}` is not a date and time ({e}); quote it if it is text",
                node.start_mark) from None


UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", UniqueKeyLoader.construct_yaml_timestamp)


# What one YAML document may hold once its aliases are expanded, and how deep. An alias is a reference, so a
# few hundred bytes of anchors nine levels deep (`&l1 [*l0, *l0, ...]`) make a value of hundreds of millions of
# nodes that every later walk (validation, a JSON Schema check, a request's encoding) visits in full: minutes
# of CPU for one `validate_ensemble` of an MCP client. Checked on the composed node graph, each node once.
MAX_YAML_NODES = 1_000_000
MAX_YAML_DEPTH = 100


class YamlTooLarge(yaml.YAMLError):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def load_yaml(text: str, *, max_nodes: int = MAX_YAML_NODES, max_depth: int = MAX_YAML_DEPTH) -> Any:
    """`yaml.safe_load`, with repeated keys refused, and a document larger than `max_nodes` values with its
    aliases expanded, or nested deeper than `max_depth`, refused (YamlTooLarge) before it is built."""
    loader = UniqueKeyLoader(text)
    try:
        try:
            node = loader.get_single_node()  # (PyYAML composes recursively: a deep enough text overflows it)
        except RecursionError:
            raise YamlTooLarge(f"nested deeper than {max_depth} levels") from None
        if node is None:
            return None
        _check_expansion(node, max_nodes, max_depth)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, max_nodes: int, max_depth: int) -> None:
    """The values `root` stands for with every alias expanded, counted without expanding: each distinct
    node's (count, height) once. An alias of an enclosing node (a cycle) is deeper than any bound."""
    memo: dict[int, tuple[int, int]] = {}

    def size(node: yaml.Node, depth: int) -> tuple[int, int]:
        known = memo.get(id(node))
        if known is None:
            if depth > max_depth:
                raise YamlTooLarge(f"nested deeper than {max_depth} levels (or an alias of an enclosing value)")
            count, height = 1, 0
            if isinstance(node, yaml.SequenceNode):
                children: list[yaml.Node] = list(node.value)
            elif isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            else:
                children = []
            for child in children:
                c, h = size(child, depth + 1)
                count, height = count + c, max(height, h + 1)
                if count > max_nodes:
                    break
            known = memo[id(node)] = (count, height)
        if depth + known[1] > max_depth:
            raise YamlTooLarge(f"nested deeper than {max_depth} levels")
        if known[0] > max_nodes:
            raise YamlTooLarge(f"more than {max_nodes:,} values once its aliases (`*name`) are expanded")
        return known

    size(root, 0)


def yaml_mapping(text: str, file: str | None) -> dict[Any, Any]:
    """The parsed YAML of a config file: a mapping of sections (empty for an empty file), or a ConfigError."""
    from tierwise.errors import ConfigError

    try:
        data = load_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        before = line.split("${", 1)[0]
        hint = (" (a value holding `${VAR}` inside `{...}` or `[...]` must be quoted: \"ledger-${VAR}.db\"; `{` "
                "and `}` are YAML's own there)") if "${" in line and ("{" in before or "[" in before) else ""
        raise ConfigError(f"{yaml_problem(e, text)}{hint}", file=file) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        what = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise ConfigError(f"the top level must be a mapping of sections (`providers:`, `models:`, `routes:`, ...), "
                          f"found {what}: write them unindented, without a leading `- `", file=file)
    return data


def yaml_problem(e: yaml.YAMLError, text: str) -> str:
    """A YAML syntax error as one line a person can act on: where it was found, what was wrong, where the
    construct it broke began (PyYAML often notices an unclosed `{` or `[` only on a later line), and, for a
    tab, that YAML indents with spaces only."""
    if isinstance(e, YamlTooLarge):
        return f"refused: the YAML is {e.problem}"
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    ctx, ctx_mark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if ctx and ctx_mark is not None and (mark is None or ctx_mark.line != mark.line):
        problem += f" ({ctx} that starts on line {ctx_mark.line + 1})"
    lines = text.splitlines()
    line = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
    if "\t" in problem or "\t" in line[: (mark.column + 1) if mark is not None else 0]:
        problem += "; YAML indents with spaces only: replace the tab with spaces"
    elif ctx in ("while scanning an alias", "while scanning an anchor") or problem.startswith("found undefined alias"):
        problem += ('; a value that starts with `*` or `&` is read as a YAML alias or anchor: quote it, as a glob '
                    'needs (`model: "*haiku*"`)')
    elif problem.startswith("expected <block end>"):
        problem += "; this line is indented to no key above it: the keys of one mapping start in the same column"
    elif problem == "mapping values are not allowed here":
        problem += ('; a second `: ` on the line: quote a value that holds one (`system: "you are: brief"`), or, '
                    "for a key, line it up with the keys beside it")
    return f"{where}not valid YAML: {problem}"



def value_path(data: Any, value: str, path: str) -> str:
    """The dotted path (`routes.main.rules[2].target`) of the first place `value` is written inside `data`, else
    `path`: an error about a reference then names the line the name is on, not the route's first line."""

    def find(node: Any, at: str) -> str | None:
        if node == value:
            return at
        if isinstance(node, dict):
            return next((f for k, v in node.items() if (f := find(v, f"{at}.{k}")) is not None), None)
        if isinstance(node, list):
            return next((f for i, v in enumerate(node) if (f := find(v, f"{at}[{i}]")) is not None), None)
        return None

    return find(data, path) or path


def near_name(name: str, names: typing.Iterable[str]) -> str:
    """"did you mean `x`? " for the closest of `names` (a misspelt model or route), or nothing."""
    match = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.6)
    return f"did you mean `{match[0]}`? " if match else ""


def shown(value: object) -> str:
    """`value` as an error message repeats it, unless it may be a secret: a key pasted where a name belongs, or
    what a `${VAR}` put there (`provider: ${ANTHROPIC_API_KEY}` printed the key, which the file never held)."""
    import os

    from tierwise.config_env import _looks_like_a_secret

    if isinstance(value, str) and (_looks_like_a_secret(value) or (
            len(value) >= 6 and any(value == v for v in os.environ.values()))):
        return "(the value is not repeated: it looks like a key, or holds an environment variable's value)"
    return repr(value)


def unknown_name(what: str, name: object, names: typing.Iterable[str]) -> str:
    """"unknown <what> 'x' (did you mean `y`? known: a, b)": a misspelt provider, policy, route or model named
    with the one it most likely meant, and every one there is. A value that may be a secret is not repeated."""
    names = sorted(names)
    near = near_name(name, names) if isinstance(name, str) else ""
    return f"unknown {what} {shown(name)} ({near}known: {', '.join(names) or 'none'})"
