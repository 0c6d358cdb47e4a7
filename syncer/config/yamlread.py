"""Read config YAML: safe loading, keys always as written, duplicate keys reported."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["YamlProblem", "read_yaml"]


class YamlProblem(Exception):
    """The text is not valid YAML; the message names the line and column."""


class _Loader(yaml.SafeLoader):
    """SafeLoader whose mapping keys stay strings as written and whose duplicates are kept."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key: Any = key_node.value
        else:
            key = str(loader.construct_object(key_node, deep=True))
        if key in result:
            mark = key_node.start_mark
            loader.duplicates.append(
                f"line {mark.line + 1}, column {mark.column + 1}: duplicate key '{key}'"
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(text: str) -> tuple[Any, list[str]]:
    """Parse ``text``; returns (document, duplicate-key messages). Raises YamlProblem."""
    loader = _Loader(text)
    try:
        return loader.get_single_data(), loader.duplicates
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlProblem(f"YAML syntax error{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"YAML syntax error: {exc}") from None
    finally:
        loader.dispose()
