"""Amazon's *static sandbox*: canned answers keyed by request parameters, as the models declare them.

Cases come from each operation's ``responses.<code>.x-amzn-api-sandbox.static[]`` in a model. The
project never reads the model files itself: whoever wants static mode (a test, the CLI with a path)
passes the parsed models to ``StaticCases.load``. A request is answered from the case whose parameters
all match (query arrays compared as lists, bodies as subsets) and that names the most parameters; see
https://developer-docs.amazon.com/sp-api/docs/the-selling-partner-api-sandbox
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request

from .http import json_body, list_param


@dataclass
class StaticCase:
    """One canned request → response pair of an operation."""

    operation: str
    status: int
    parameters: dict[str, Any]
    response: Any


@dataclass
class StaticOperation:
    """An operation's path pattern, parameter locations and cases."""

    method: str
    pattern: re.Pattern[str]
    locations: dict[str, tuple[str, str]]  # name -> (in, type)
    cases: list[StaticCase]


class StaticCases:
    """The loaded static cases of every model given."""

    def __init__(self) -> None:
        self.operations: list[StaticOperation] = []

    def load(self, model: dict[str, Any]) -> int:
        """Add the static cases of one parsed Swagger model; return how many were added."""
        added = 0
        for path, ops in model.get("paths", {}).items():
            for method, op in ops.items():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                locations = {p["name"]: (p["in"], p.get("type", "object")) for p in op.get("parameters", [])}
                cases = []
                for code, answer in op["responses"].items():
                    for case in (answer.get("x-amzn-api-sandbox", {}) or {}).get("static", []):
                        params = {k: v.get("value") for k, v in case.get("request", {}).get("parameters", {}).items()}
                        cases.append(StaticCase(op["operationId"], int(code), params, case.get("response")))
                if cases:
                    regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"
                    self.operations.append(StaticOperation(method.upper(), re.compile(regex), locations, cases))
                    added += len(cases)
        return added

    def answer(self, request: Request) -> tuple[StaticCase | None, bool]:
        """Return (the best matching case, whether the path is a known operation)."""
        for op in self.operations:
            match = op.pattern.match(request.path)
            if not match or op.method != request.method:
                continue
            best, best_size = None, -1
            body = json_body(request.get_data()) if request.method in ("POST", "PUT", "PATCH") else {}
            for case in op.cases:
                if self._matches(case, op, match.groupdict(), request, body) and len(case.parameters) > best_size:
                    best, best_size = case, len(case.parameters)
            return best, True
        return None, False

    @staticmethod
    def _matches(case: StaticCase, op: StaticOperation, path_args: dict[str, str], request: Request,
                 body: dict[str, Any]) -> bool:
        for name, expected in case.parameters.items():
            where, kind = op.locations.get(name, ("query", "string"))
            if where == "path":
                if path_args.get(name) != str(expected):
                    return False
            elif where == "body":
                if not isinstance(expected, dict) or any(body.get(k) != v for k, v in expected.items()):
                    return False
            elif kind == "array":
                if list_param(request.args, name) != [str(v) for v in expected]:
                    return False
            elif request.args.get(name) != (str(expected).lower() if isinstance(expected, bool) else str(expected)):
                return False
        return True
