"""Read ``template.yaml`` as plain data, with CloudFormation's short-form tags in their long form.

``yaml.safe_load`` rejects ``!Ref`` and friends; this loader turns ``!Ref X`` into ``{"Ref": "X"}``,
``!GetAtt A.B`` into ``{"Fn::GetAtt": ["A", "B"]}``, ``!Sub s`` into ``{"Fn::Sub": s}`` and so on, which is
exactly what CloudFormation itself does before it reads the template. The infrastructure tests and the
local sandbox (which builds its DynamoDB table and secrets from the template's own definitions) share it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# types-PyYAML is not among the dev dependencies yet; the ignores stay harmless once it is.
import yaml  # type: ignore[import-untyped, unused-ignore]

TEMPLATE_PATH = Path(__file__).resolve().parents[1] / "template.yaml"

# Tags whose long form is ``{"Fn::<Name>": value}``; !Ref, !Condition and !GetAtt are special-cased below.
_FN_TAGS = (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
)

# CloudFormation keeps unquoted dates such as ``2010-09-09`` as strings; PyYAML would make them dates.
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class CloudFormationLoader(yaml.SafeLoader):  # type: ignore[misc, unused-ignore]
    """A safe YAML loader that also understands every CloudFormation intrinsic-function tag."""


CloudFormationLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _node_value(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise yaml.constructor.ConstructorError(None, None, f"unexpected node {type(node).__name__}", node.start_mark)


def _long_form(key: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {key: _node_value(loader, node)}

    return construct


def _get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _node_value(loader, node)
    if isinstance(value, str):
        # "Resource.Attribute" or "Stack.Outputs.Name": only the first dot separates the resource.
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {"Fn::GetAtt": value}


CloudFormationLoader.add_constructor("!Ref", _long_form("Ref"))
CloudFormationLoader.add_constructor("!Condition", _long_form("Condition"))
CloudFormationLoader.add_constructor("!GetAtt", _get_att)
for _name in _FN_TAGS:
    CloudFormationLoader.add_constructor(f"!{_name}", _long_form(f"Fn::{_name}"))


def load_template(path: Path | None = None) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template (default: the repository's ``template.yaml``)."""
    text = (path or TEMPLATE_PATH).read_text(encoding="utf-8")
    document = yaml.load(text, Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict):
        raise ValueError(f"{path or TEMPLATE_PATH} is not a CloudFormation template (top level is not a mapping)")
    return document
