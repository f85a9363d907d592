"""JSON-shape checks of request bodies (Marathon's RAML layer).

Runs before anything else touches a body, so later stages can trust types. Every
problem is collected as a :class:`~marathon_core.errors.Violation` with a Play-JSON
style code (``error.expected.jsstring``, ``error.path.missing``, ``error.min`` ...) at
a Marathon path (``/a/b``, ``/list(0)``, ``/env/KEY``). Unknown keys are ignored, as
Marathon ignores them. The schemas are small node objects built once at import.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Mapping
from typing import Any

from marathon_core.errors import Violation
from marathon_core.model.ids import Timestamp, valid_id_string

__all__ = ["APP", "APP_UPDATE", "GROUP", "GROUP_REF", "Node", "check"]

Errs = list[Violation]


def _p(path: str) -> str:
    return path or "/"


class Node(abc.ABC):
    """One schema node; ``check`` appends violations for ``value`` found at ``path``.

    ``json_schema`` describes the same shape as JSON Schema, so the API document
    (OpenAPI) comes from the very nodes that check requests.
    """

    __slots__ = ()
    expected = "error.expected.jsobject"

    @abc.abstractmethod
    def check(self, value: Any, path: str, errs: Errs) -> None: ...

    @abc.abstractmethod
    def json_schema(self) -> dict[str, Any]: ...


class AnyNode(Node):
    __slots__ = ()

    def check(self, value: Any, path: str, errs: Errs) -> None:
        return None

    def json_schema(self) -> dict[str, Any]:
        return {}


class Str(Node):
    __slots__ = ("enum", "max_len", "min_len", "pattern", "test")
    expected = "error.expected.jsstring"

    def __init__(
        self,
        *,
        min_len: int | None = None,
        max_len: int | None = None,
        pattern: str | None = None,
        test: Callable[[str], bool] | None = None,
        enum: tuple[str, ...] | None = None,
    ) -> None:
        self.min_len, self.max_len, self.enum = min_len, max_len, enum
        self.pattern = re.compile(pattern) if pattern is not None else None
        self.test = test

    def check(self, value: Any, path: str, errs: Errs) -> None:
        if value.__class__ is not str:
            errs.append(Violation(_p(path), self.expected))
            return
        if self.enum is not None:
            if value not in self.enum:
                errs.append(Violation(_p(path), "error.unknown.enum.literal"))
            return
        n = len(value)
        if self.min_len is not None and n < self.min_len:
            errs.append(Violation(_p(path), "error.minLength"))
        if self.max_len is not None and n > self.max_len:
            errs.append(Violation(_p(path), "error.maxLength"))
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            errs.append(Violation(_p(path), "error.pattern"))
        if self.test is not None and not self.test(value):
            errs.append(Violation(_p(path), "error.pattern"))

    def json_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        if self.enum is not None:
            out["enum"] = list(self.enum)
        if self.min_len is not None:
            out["minLength"] = self.min_len
        if self.max_len is not None:
            out["maxLength"] = self.max_len
        if self.pattern is not None:
            out["pattern"] = f"^(?:{self.pattern.pattern})$"
        return out


class Num(Node):
    __slots__ = ("integer", "max", "min")
    expected = "error.expected.jsnumber"

    def __init__(
        self, *, min: float | None = None, max: float | None = None, integer: bool = False
    ) -> None:
        self.min, self.max, self.integer = min, max, integer

    def check(self, value: Any, path: str, errs: Errs) -> None:
        cls = value.__class__
        if cls is not int and cls is not float:
            errs.append(Violation(_p(path), self.expected))
            return
        if cls is float and (value != value or value in (float("inf"), float("-inf"))):
            errs.append(Violation(_p(path), self.expected))
            return
        if self.integer and cls is float and not value.is_integer():
            errs.append(Violation(_p(path), "error.expected.int"))
            return
        if self.integer and not -(2**63) <= value < 2**63:
            errs.append(Violation(_p(path), "error.expected.int"))
            return
        if self.min is not None and value < self.min:
            errs.append(Violation(_p(path), "error.min"))
        if self.max is not None and value > self.max:
            errs.append(Violation(_p(path), "error.max"))

    def json_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer" if self.integer else "number"}
        if self.min is not None:
            out["minimum"] = self.min
        if self.max is not None:
            out["maximum"] = self.max
        return out


def Int(*, min: int | None = None, max: int | None = None) -> Num:
    return Num(min=min, max=max, integer=True)


class Bool(Node):
    __slots__ = ()
    expected = "error.expected.jsboolean"

    def check(self, value: Any, path: str, errs: Errs) -> None:
        if value.__class__ is not bool:
            errs.append(Violation(_p(path), self.expected))

    def json_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class Arr(Node):
    __slots__ = ("item", "max_len", "min_len")
    expected = "error.expected.jsarray"

    def __init__(self, item: Node, *, min_len: int | None = None, max_len: int | None = None):
        self.item, self.min_len, self.max_len = item, min_len, max_len

    def check(self, value: Any, path: str, errs: Errs) -> None:
        if value.__class__ is not list:
            errs.append(Violation(_p(path), self.expected))
            return
        if self.min_len is not None and len(value) < self.min_len:
            errs.append(Violation(_p(path), "error.minLength"))
        if self.max_len is not None and len(value) > self.max_len:
            errs.append(Violation(_p(path), "error.maxLength"))
        check = self.item.check
        for i, v in enumerate(value):
            check(v, f"{path}({i})", errs)

    def json_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "array", "items": self.item.json_schema()}
        if self.min_len is not None:
            out["minItems"] = self.min_len
        if self.max_len is not None:
            out["maxItems"] = self.max_len
        return out


class Map(Node):
    """A JSON object used as a map (``env``, ``labels``): every value has one shape."""

    __slots__ = ("value",)

    def __init__(self, value: Node) -> None:
        self.value = value

    def check(self, value: Any, path: str, errs: Errs) -> None:
        if value.__class__ is not dict:
            errs.append(Violation(_p(path), self.expected))
            return
        check = self.value.check
        for k, v in value.items():
            check(v, f"{path}/{k}", errs)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": self.value.json_schema()}


class Obj(Node):
    """A JSON object with known fields; ``null`` in an optional field means absent."""

    __slots__ = ("fields", "required")

    def __init__(self, fields: Mapping[str, Node], *, required: tuple[str, ...] = ()) -> None:
        self.fields = dict(fields)
        self.required = required

    def check(self, value: Any, path: str, errs: Errs) -> None:
        if value.__class__ is not dict:
            errs.append(Violation(_p(path), self.expected))
            return
        for key in self.required:
            if value.get(key) is None:
                node = self.fields[key]
                if key in value:
                    errs.append(Violation(f"{path}/{key}", node.expected))
                else:
                    errs.append(Violation(f"{path}/{key}", "error.path.missing"))
        fields = self.fields
        if len(value) < len(fields):
            for key, v in value.items():
                if v is not None:
                    found = fields.get(key)
                    if found is not None:
                        found.check(v, f"{path}/{key}", errs)
        else:
            for key, node in fields.items():
                v = value.get(key)
                if v is not None:
                    node.check(v, f"{path}/{key}", errs)

    def json_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "object",
            "properties": {k: n.json_schema() for k, n in self.fields.items()},
        }
        if self.required:
            out["required"] = list(self.required)
        return out


class OneOf(Node):
    """The first alternative whose JSON type matches decides (``"disabled"`` vs object)."""

    __slots__ = ("alternatives", "expected")

    def __init__(self, *alternatives: tuple[type, Node], expected: str) -> None:
        self.alternatives = alternatives
        self.expected = expected

    def check(self, value: Any, path: str, errs: Errs) -> None:
        for tp, node in self.alternatives:
            if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
                node.check(value, path, errs)
                return
        errs.append(Violation(_p(path), self.expected))

    def json_schema(self) -> dict[str, Any]:
        return {"oneOf": [node.json_schema() for _, node in self.alternatives]}


class Lazy(Node):
    """A forward reference, for the recursive group schema."""

    __slots__ = ("ref", "target")

    def __init__(self, ref: str) -> None:
        self.target: Node = AnyNode()
        self.ref = ref

    def check(self, value: Any, path: str, errs: Errs) -> None:
        self.target.check(value, path, errs)

    def json_schema(self) -> dict[str, Any]:
        return {"$ref": self.ref}


def check(node: Node, value: Any) -> list[Violation]:
    """All shape violations of ``value`` against ``node`` (empty when fine)."""
    errs: Errs = []
    node.check(value, "", errs)
    return errs


def _valid_ts(text: str) -> bool:
    try:
        Timestamp.parse(text)
    except (ValueError, OverflowError):
        return False
    return True


# -- the schemas -----------------------------------------------------------------------

PORT = Int(min=0, max=65535)
PROTOCOL = Str(enum=("tcp", "udp", "udp,tcp"))
PORT_NAME = Str(pattern=r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABELS = Map(Str())
PATH_ID = Str(min_len=1, test=valid_id_string)
TIMESTAMP = Str(test=_valid_ts)
CONSTRAINTS = Arr(Arr(Str(), min_len=2, max_len=3))
LIMIT = OneOf(
    (str, Str(enum=("unlimited",))),
    (int, Num(min=0)),
    (float, Num(min=0)),
    expected="error.expected.jsnumber",
)

PORT_DEFINITION = Obj(
    {"port": PORT, "protocol": PROTOCOL, "name": PORT_NAME, "labels": LABELS},
)
PORT_MAPPING = Obj(
    {
        "containerPort": PORT,
        "hostPort": PORT,
        "servicePort": PORT,
        "protocol": PROTOCOL,
        "name": PORT_NAME,
        "labels": LABELS,
        "networkNames": Arr(Str()),
    }
)
NETWORK = Obj(
    {
        "mode": Str(enum=("host", "container/bridge", "container")),
        "name": Str(min_len=1, max_len=63, pattern=r"[a-z0-9]([-a-z0-9_]*[a-z0-9])?"),
        "labels": LABELS,
    }
)
DOCKER = Obj(
    {
        "image": Str(min_len=1),
        "forcePullImage": Bool(),
        "privileged": Bool(),
        "parameters": Arr(Obj({"key": Str(), "value": Str()}, required=("key", "value"))),
        "network": Str(enum=("BRIDGE", "HOST", "USER", "NONE")),
        "portMappings": Arr(PORT_MAPPING),
        "pullConfig": Obj({"secret": Str()}, required=("secret",)),
        "credential": Obj({"principal": Str(), "secret": Str()}),
    },
    required=("image",),
)
VOLUME = Obj(
    {
        "containerPath": Str(min_len=1),
        "hostPath": Str(min_len=1),
        "mode": Str(enum=("RO", "RW")),
        "persistent": Obj(
            {
                "type": Str(enum=("root", "path", "mount")),
                "size": Int(min=1),
                "maxSize": Int(min=1),
                "profileName": Str(min_len=1),
                "constraints": CONSTRAINTS,
            },
            required=("size",),
        ),
        "external": Obj(
            {
                "name": Str(min_len=1),
                "provider": Str(min_len=1),
                "options": LABELS,
                "size": Int(min=1),
                "shared": Bool(),
            }
        ),
        "secret": Str(min_len=1),
    },
    required=("containerPath",),
)
CONTAINER = Obj(
    {
        "type": Str(min_len=1),
        "docker": DOCKER,
        "portMappings": Arr(PORT_MAPPING),
        "volumes": Arr(VOLUME),
    }
)
HEALTH_CHECK = Obj(
    {
        "protocol": Str(min_len=1),
        "path": Str(),
        "portIndex": Int(min=0),
        "port": PORT,
        "command": Obj({"value": Str(min_len=1)}, required=("value",)),
        "gracePeriodSeconds": Int(min=0),
        "intervalSeconds": Int(min=1),
        "timeoutSeconds": Int(min=1),
        "maxConsecutiveFailures": Int(min=0),
        "delaySeconds": Int(min=0),
        "ignoreHttp1xx": Bool(),
        "ipProtocol": Str(enum=("IPv4", "IPv6")),
    }
)
READINESS_CHECK = Obj(
    {
        "name": Str(min_len=1),
        "protocol": Str(enum=("HTTP", "HTTPS")),
        "path": Str(),
        "portName": Str(min_len=1),
        "intervalSeconds": Int(min=1),
        "timeoutSeconds": Int(min=1),
        "httpStatusCodesForReady": Arr(Int(min=100, max=999)),
        "preserveLastResponse": Bool(),
    }
)
_RES = {"cpus": Num(min=0), "mem": Num(min=0), "disk": Num(min=0)}
_APP_FIELDS: dict[str, Node] = {
    "id": PATH_ID,
    "cmd": Str(min_len=1),
    "args": Arr(Str()),
    "user": Str(),
    "env": Map(
        OneOf(
            (str, Str()),
            (dict, Obj({"secret": Str()}, required=("secret",))),
            expected="error.expected.jsstring",
        )
    ),
    "instances": Int(min=0),
    "cpus": Num(min=0.001),
    "mem": Num(min=0),
    "disk": Num(min=0),
    "gpus": Int(min=0),
    "executor": Str(pattern=r"//cmd|/?[^/]+(/[^/]+)*|"),
    "executorResources": Obj(_RES),
    "constraints": CONSTRAINTS,
    "acceptedResourceRoles": Arr(Str(min_len=1)),
    "role": Str(min_len=1),
    "portDefinitions": Arr(PORT_DEFINITION),
    "ports": Arr(PORT),
    "requirePorts": Bool(),
    "networks": Arr(NETWORK),
    "ipAddress": Obj(
        {
            "networkName": Str(),
            "labels": LABELS,
            "groups": Arr(Str()),
            "discovery": Obj(
                {
                    "ports": Arr(
                        Obj(
                            {"number": PORT, "name": Str(), "protocol": PROTOCOL, "labels": LABELS},
                            required=("number", "name"),
                        )
                    )
                }
            ),
        }
    ),
    "container": CONTAINER,
    "healthChecks": Arr(HEALTH_CHECK),
    "check": Obj({}),
    "readinessChecks": Arr(READINESS_CHECK),
    "dependencies": Arr(PATH_ID),
    "upgradeStrategy": Obj(
        {
            "minimumHealthCapacity": Num(min=0, max=1),
            "maximumOverCapacity": Num(min=0, max=1),
        },
        required=("minimumHealthCapacity", "maximumOverCapacity"),
    ),
    "backoffSeconds": Int(min=0),
    "backoffFactor": Num(min=1.0),
    "maxLaunchDelaySeconds": Int(min=0),
    "killSelection": Str(enum=("YOUNGEST_FIRST", "OLDEST_FIRST")),
    "unreachableStrategy": OneOf(
        (str, Str(enum=("disabled",))),
        (
            dict,
            Obj({"inactiveAfterSeconds": Int(min=0), "expungeAfterSeconds": Int(min=0)}),
        ),
        expected="error.expected.jsobject",
    ),
    "taskKillGracePeriodSeconds": Int(min=0),
    "fetch": Arr(
        Obj(
            {
                "uri": Str(min_len=1, max_len=1024),
                "extract": Bool(),
                "executable": Bool(),
                "cache": Bool(),
                "destPath": Str(),
            },
            required=("uri",),
        )
    ),
    "uris": Arr(Str(min_len=1, max_len=1024)),
    "secrets": Map(Obj({"source": Str(min_len=1)}, required=("source",))),
    "labels": LABELS,
    "residency": Obj(
        {
            "relaunchEscalationTimeoutSeconds": Int(min=0),
            "taskLostBehavior": Str(enum=("WAIT_FOREVER", "RELAUNCH_AFTER_TIMEOUT")),
        }
    ),
    "tty": Bool(),
    "resourceLimits": Obj({"cpus": LIMIT, "mem": LIMIT}),
    "version": TIMESTAMP,
}

#: POST /v2/apps and apps inside group bodies.
APP = Obj(_APP_FIELDS, required=("id",))
#: PUT/PATCH /v2/apps/{id}: the id comes from the URL.
APP_UPDATE = Obj(_APP_FIELDS)

#: Where the recursive group schema is found in an API document.
GROUP_REF = "#/components/schemas/Group"
_GROUP = Lazy(GROUP_REF)
#: POST/PUT /v2/groups bodies (app ids may be relative there).
GROUP = Obj(
    {
        "id": PATH_ID,
        "apps": Arr(Obj({**_APP_FIELDS})),
        "groups": Arr(_GROUP),
        "dependencies": Arr(PATH_ID),
        "version": TIMESTAMP,
        "scaleBy": Num(min=0),
        "enforceRole": Bool(),
        "pods": Arr(AnyNode()),
    }
)
_GROUP.target = GROUP
# Apps inside groups need an id too.
GROUP.fields["apps"] = Arr(APP)
