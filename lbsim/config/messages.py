"""One-line messages for bad input: a pydantic error as ``<key path> must be <rule>; got <value>.``"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from lbsim.errors import ConfigError, shown


def format_location(loc: Iterable[Any]) -> str:
    """Turn a pydantic location ``('servers', 1, 'workers')`` into ``servers[1].workers``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe(error: Mapping[str, Any]) -> str:
    """Turn one pydantic error into ``<key path> must be <rule>; got <value>.``"""
    loc = list(error["loc"])
    ctx = error.get("ctx") or {}
    kind = error["type"]
    value = error.get("input")
    if kind == "value_error" and isinstance(ctx.get("error"), ConfigError):
        cause = ctx["error"]
        if cause.key:
            loc.append(cause.key)
        message = str(cause)
    elif kind == "missing":
        message = "must be given; got nothing."
    else:
        message = (
            _RULES.get(kind, "must be valid ({msg})").format(msg=error["msg"], **ctx)
            + f"; got {shown(value)}."
        )
        if kind == "literal_error":
            choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
            close = difflib.get_close_matches(str(value), choices, n=1)
            if close:
                message += f" Did you mean {close[0]!r}?"
    where = format_location(loc)
    if not where:
        return message
    return f"{where} {message}" if message.startswith("must") else f"{where}: {message}"


_RULES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "string_pattern_mismatch": "must match {pattern}",
    "literal_error": "must be one of {expected}",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "too_short": "must have at least {min_length} item(s)",
    "extra_forbidden": "must not be given",
}
