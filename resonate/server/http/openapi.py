"""The OpenAPI 3.1 document, generated from the route table (http-api.md §11.4)."""

from __future__ import annotations

from typing import Any

from resonate import __version__
from resonate.core.errors import Code
from resonate.core.promise import PromiseState
from resonate.core.schema import VALUE_SCHEMA, to_openapi
from resonate.core.task import TaskState
from resonate.core.task2026 import Task2026State
from resonate.server.doctor import CHECKS, KINDS, SEVERITIES
from resonate.server.http.routes import ANY_JSON, EMPTY, EVENT_STREAM, Route

INT64 = {"type": "integer", "format": "int64"}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
OUTPUT_VALUE = {
    "type": "object",
    "properties": {"headers": STRING_MAP, "data": {"type": "string", "contentEncoding": "base64"}},
}

COMPONENTS: dict[str, Any] = {
    "Value": VALUE_SCHEMA,
    "Promise": {
        "type": "object",
        "required": ["id", "state", "param", "value", "timeout"],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": [s.name for s in PromiseState]},
            "param": OUTPUT_VALUE,
            "value": OUTPUT_VALUE,
            "timeout": INT64,
            "idempotencyKeyForCreate": {"type": "string"},
            "idempotencyKeyForComplete": {"type": "string"},
            "tags": STRING_MAP,
            "createdOn": INT64,
            "completedOn": INT64,
        },
    },
    "EnvelopeReply": {
        "description": "A 2026-04-01 protocol reply (protocol-2026.md §2): data is an object "
        "on success, a message string on error; the HTTP status equals head.status",
        "type": "object",
        "required": ["kind", "head", "data"],
        "properties": {
            "kind": {"type": "string"},
            "head": {
                "type": "object",
                "required": ["corrId", "status", "version"],
                "properties": {
                    "corrId": {"type": "string"},
                    "status": {"type": "integer"},
                    "version": {"type": "string", "const": "2026-04-01"},
                },
            },
            "data": {"oneOf": [{"type": "object"}, {"type": "string"}]},
        },
    },
    "Callback": {
        "type": "object",
        "required": ["id", "promiseId", "rootPromiseId", "timeout", "createdOn"],
        "properties": {
            "id": {"type": "string"},
            "promiseId": {"type": "string"},
            "rootPromiseId": {"type": "string"},
            "timeout": INT64,
            "createdOn": INT64,
        },
    },
    "ExtCallback": {
        "type": "object",
        "required": [
            "id",
            "type",
            "promiseId",
            "rootPromiseId",
            "recv",
            "timeout",
            "createdOn",
        ],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["resume", "notify"]},
            "promiseId": {"type": "string"},
            "rootPromiseId": {"type": "string"},
            "recv": {
                "description": "As registered: a logical recv, or a {type, data} object",
                "oneOf": [
                    {"type": "string"},
                    {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"type": "string"}, "data": {}},
                    },
                ],
            },
            "timeout": INT64,
            "createdOn": INT64,
        },
    },
    "CallbackPage": {
        "type": "object",
        "required": ["cursor", "callbacks"],
        "properties": {
            "cursor": {"type": ["string", "null"]},
            "callbacks": {"type": "array", "items": {"$ref": "#/components/schemas/ExtCallback"}},
        },
    },
    "Registration": {
        "type": "object",
        "required": ["callback", "promise"],
        "properties": {
            "callback": {"oneOf": [{"$ref": "#/components/schemas/Callback"}, {"type": "null"}]},
            "promise": {"$ref": "#/components/schemas/Promise"},
        },
    },
    "Task": {
        "type": "object",
        "required": ["id", "counter", "timeout", "rootPromiseId"],
        "properties": {
            "id": {"type": "string"},
            "counter": INT64,
            "timeout": INT64,
            "rootPromiseId": {"type": "string"},
            "processId": {"type": "string"},
            "createdOn": INT64,
            "completedOn": INT64,
        },
    },
    "ExtendedTask": {
        "type": "object",
        "required": [
            "id",
            "state",
            "type",
            "counter",
            "attempt",
            "rootPromiseId",
            "recv",
            "timeout",
            "ttl",
            "expiresAt",
        ],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": [s.name for s in TaskState]},
            "type": {"type": "string", "enum": ["invoke", "resume", "notify"]},
            "counter": INT64,
            "attempt": INT64,
            "rootPromiseId": {"type": "string"},
            "leafPromiseId": {"type": "string"},
            "processId": {"type": "string"},
            "recv": {},
            "timeout": INT64,
            "ttl": INT64,
            "expiresAt": INT64,
            "createdOn": {"type": ["integer", "null"], "format": "int64"},
            "completedOn": INT64,
        },
    },
    "TaskPage": {
        "type": "object",
        "required": ["cursor", "tasks"],
        "properties": {
            "cursor": {"type": ["string", "null"]},
            "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/ExtendedTask"}},
        },
    },
    "PromiseAndTask": {
        "type": "object",
        "required": ["promise", "task"],
        "properties": {
            "promise": {"$ref": "#/components/schemas/Promise"},
            "task": {"oneOf": [{"$ref": "#/components/schemas/Task"}, {"type": "null"}]},
        },
    },
    "PromiseRef": {
        "type": "object",
        "required": ["id", "href", "data"],
        "properties": {
            "id": {"type": "string"},
            "href": {"type": "string"},
            "data": {"oneOf": [{"$ref": "#/components/schemas/Promise"}, {"type": "null"}]},
        },
    },
    "ClaimedTask": {
        "type": "object",
        "required": ["type", "promises"],
        "properties": {
            "type": {"type": "string", "enum": ["invoke", "resume", "notify"]},
            "promises": {
                "type": "object",
                "required": ["root"],
                "properties": {
                    "root": {"$ref": "#/components/schemas/PromiseRef"},
                    "leaf": {"$ref": "#/components/schemas/PromiseRef"},
                },
            },
        },
    },
    "TasksAffected": {
        "type": "object",
        "required": ["tasksAffected"],
        "properties": {"tasksAffected": INT64},
    },
    "Lock": {
        "type": "object",
        "required": ["resourceId", "executionId", "processId", "ttl", "expiresAt"],
        "properties": {
            "resourceId": {"type": "string"},
            "executionId": {"type": "string"},
            "processId": {"type": "string"},
            "ttl": INT64,
            "expiresAt": INT64,
        },
    },
    "LockPage": {
        "type": "object",
        "required": ["cursor", "locks"],
        "properties": {
            "cursor": {"type": ["string", "null"]},
            "locks": {"type": "array", "items": {"$ref": "#/components/schemas/Lock"}},
        },
    },
    "LocksAffected": {
        "type": "object",
        "required": ["locksAffected"],
        "properties": {"locksAffected": INT64},
    },
    "Schedule": {
        "type": "object",
        "required": [
            "id",
            "cron",
            "tags",
            "promiseId",
            "promiseTimeout",
            "promiseParam",
            "nextRunTime",
            "createdOn",
        ],
        "properties": {
            "id": {"type": "string"},
            "description": {"type": "string"},
            "cron": {"type": "string"},
            "timezone": {"type": "string"},
            "tags": STRING_MAP,
            "promiseId": {"type": "string"},
            "promiseTimeout": INT64,
            "promiseParam": OUTPUT_VALUE,
            "promiseTags": STRING_MAP,
            "lastRunTime": INT64,
            "nextRunTime": INT64,
            "idempotencyKey": {"type": "string"},
            "createdOn": INT64,
        },
    },
    "SchedulePage": {
        "type": "object",
        "required": ["cursor", "schedules"],
        "properties": {
            "cursor": {"type": ["string", "null"]},
            "schedules": {"type": "array", "items": {"$ref": "#/components/schemas/Schedule"}},
        },
    },
    "PromisePage": {
        "type": "object",
        "required": ["cursor", "promises"],
        "properties": {
            "cursor": {"type": ["string", "null"]},
            "promises": {"type": "array", "items": {"$ref": "#/components/schemas/Promise"}},
        },
    },
    "StateCounts": {
        "type": "object",
        "additionalProperties": INT64,
        "description": "A count for every state, zero included",
    },
    "Stats": {
        "type": "object",
        "required": [
            "version",
            "store",
            "startedAt",
            "time",
            "countedAt",
            "promises",
            "tasks",
            "tasks2026",
            "schedules",
            "locks",
        ],
        "properties": {
            "version": {"type": "string"},
            "store": {"type": "string", "enum": ["sqlite", "postgres"]},
            "startedAt": {**INT64, "description": "When this server started, ms"},
            "time": {**INT64, "description": "The server's clock now, ms"},
            "countedAt": {**INT64, "description": "When the counts were taken (cached), ms"},
            "promises": {
                "$ref": "#/components/schemas/StateCounts",
                "propertyNames": {"enum": [s.name for s in PromiseState]},
            },
            "tasks": {
                "$ref": "#/components/schemas/StateCounts",
                "propertyNames": {"enum": [s.name for s in TaskState]},
            },
            "tasks2026": {
                "$ref": "#/components/schemas/StateCounts",
                "propertyNames": {"enum": [s.value for s in Task2026State]},
                "description": "Tasks of the 2026-04-01 protocol by state",
            },
            "schedules": INT64,
            "locks": {**INT64, "description": "Locks held (not expired) at countedAt"},
        },
    },
    "StuckTask": {
        "allOf": [
            {"$ref": "#/components/schemas/ExtendedTask"},
            {
                "type": "object",
                "required": ["reason"],
                "properties": {"reason": {"type": "string", "enum": ["lease", "counter"]}},
            },
        ],
    },
    "Stuck": {
        "type": "object",
        "required": ["time", "promises", "tasks", "schedules", "locks"],
        "properties": {
            "time": {**INT64, "description": "The server's clock the lists were read at, ms"},
            "promises": {"type": "array", "items": {"$ref": "#/components/schemas/Promise"}},
            "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/StuckTask"}},
            "schedules": {"type": "array", "items": {"$ref": "#/components/schemas/Schedule"}},
            "locks": {"type": "array", "items": {"$ref": "#/components/schemas/Lock"}},
        },
    },
    "DoctorFinding": {
        "type": "object",
        "required": ["check", "severity", "kind", "id", "message", "action"],
        "properties": {
            "check": {"type": "string", "enum": list(CHECKS)},
            "severity": {"type": "string", "enum": list(SEVERITIES)},
            "kind": {"type": "string", "enum": list(KINDS)},
            "id": {"type": ["string", "null"], "description": "The subject's id; null for store"},
            "message": {"type": "string", "description": "One line: what is wrong and why"},
            "action": {"type": "string", "description": "One line: what to do about it"},
        },
    },
    "Doctor": {
        "type": "object",
        "required": ["time", "ok", "findings", "groups", "loops", "store"],
        "properties": {
            "time": {**INT64, "description": "The server's clock the checks ran at, ms"},
            "ok": {"type": "boolean", "description": "No finding is an error or a warning"},
            "findings": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/DoctorFinding"},
                "description": "Errors first, then warnings, then infos",
            },
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["group", "connections", "undelivered"],
                    "properties": {
                        "group": {"type": "string"},
                        "connections": {
                            **INT64,
                            "description": "Poll connections to THIS server (both protocols)",
                        },
                        "undelivered": {
                            **INT64,
                            "description": "Tasks waiting for the group (of the 1000 soonest due "
                            "per protocol)",
                        },
                    },
                },
            },
            "loops": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "lastSuccessAt", "ok"],
                    "properties": {
                        "name": {"type": "string"},
                        "lastSuccessAt": {"type": ["integer", "null"], "format": "int64"},
                        "ok": {"type": "boolean"},
                        "lastError": {"type": ["string", "null"]},
                    },
                },
            },
            "store": {
                "type": "object",
                "required": ["kind", "batchP99Ms", "diskFreeBytes", "migrationsPending"],
                "properties": {
                    "kind": {"type": "string", "enum": ["sqlite", "postgres"]},
                    "batchP99Ms": {"type": ["number", "null"]},
                    "diskFreeBytes": {"type": ["integer", "null"], "format": "int64"},
                    "migrationsPending": {"type": "integer"},
                },
            },
        },
    },
    "PurgeResult": {
        "description": "POST /promises/purge: one batch's deletions, or with dryRun the count",
        "oneOf": [
            {
                "type": "object",
                "required": ["before", "promises", "tasks", "more"],
                "properties": {
                    "before": {**INT64, "description": "The cutoff used, ms: send it back"},
                    "promises": {**INT64, "description": "Promises deleted"},
                    "tasks": {**INT64, "description": "Tasks deleted with them"},
                    "more": {
                        "type": "boolean",
                        "description": "The batch was full: there may be more to purge",
                    },
                },
            },
            {
                "type": "object",
                "required": ["before", "dryRun", "count", "sample"],
                "properties": {
                    "before": {**INT64, "description": "The cutoff used, ms"},
                    "dryRun": {"type": "boolean", "const": True},
                    "count": {**INT64, "description": "Promises a purge would delete now"},
                    "sample": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Some of their ids, in the order a purge takes them",
                    },
                },
            },
        ],
    },
    "Status": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok"]}},
    },
    "Ready": {
        "type": "object",
        "required": ["status", "store", "schemaVersion"],
        "properties": {
            "status": {"type": "string", "enum": ["ok"]},
            "store": {"type": "string", "enum": ["sqlite", "postgres"]},
            "schemaVersion": {"type": "integer"},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "integer", "enum": [int(c) for c in Code if c >= 40000]},
                    "message": {"type": "string"},
                    "details": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["@type", "message", "domain"],
                            "properties": {
                                "@type": {
                                    "type": "string",
                                    "enum": ["FieldValidationError", "RequestError", "ServerError"],
                                },
                                "message": {"type": "string"},
                                "domain": {"type": "string", "enum": ["request", "server"]},
                                "metadata": {"type": "object"},
                            },
                        },
                    },
                },
            }
        },
    },
}

ERROR_TEXT = {
    400: "Invalid request",
    401: "Unauthorized",
    403: "Forbidden or state conflict",
    404: "Not found",
    405: "Method not allowed",
    408: "The request body stopped arriving",
    409: "Already exists",
    412: "Task precondition failed",
    413: "Body too large",
    500: "Server or store error",
    503: "Not ready or shutting down",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _success(status: int, schema: str) -> dict[str, Any]:
    """A success response; an empty one has no content at all (OpenAPI 3.1 §4.8.17)."""
    if schema == EMPTY:
        return {"description": "Success, no content"}
    if schema == EVENT_STREAM:
        stream = {"type": "string", "description": "data: <one-line JSON> events (§5.2)"}
        return {"description": "Success", "content": {"text/event-stream": {"schema": stream}}}
    body = {"type": "object"} if schema == ANY_JSON else _ref(schema)
    description = "Success" if status < 300 else f"Reply with head.status {status}"
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _errors(route: Route) -> list[int]:
    """The route's errors, plus 408 where it reads a body: a body that stops arriving for
    ``api.http.headerTimeout`` is answered 408."""
    statuses = set(route.errors)
    if route.body is not None:
        statuses.add(408)
    return sorted(statuses)


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation,
        "summary": route.summary,
        "parameters": [
            {
                "name": param.name,
                "in": param.location,
                "required": param.required or param.location == "path",
                "schema": param.schema,
                **({"description": param.description} if param.description else {}),
                **({"style": "deepObject", "explode": True} if param.name == "tags" else {}),
            }
            for param in route.params
        ],
        "responses": {},
    }
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": to_openapi(route.body)}},
        }
    for status, schema in route.responses.items():
        operation["responses"][str(status)] = _success(status, schema)
    for status in _errors(route):
        operation["responses"][str(status)] = {
            "description": ERROR_TEXT[status],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    if not route.authenticated:
        operation["security"] = []
    return operation


def build_document(routes: tuple[Route, ...]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "resonate",
            "version": __version__,
            "description": "Durable promises server, Resonate REST API compatible.",
        },
        "paths": paths,
        "components": {"schemas": COMPONENTS, "securitySchemes": SECURITY_SCHEMES},
        # Credentials are needed only when the server is configured for them (api.http.auth,
        # api.auth.publicKey): hence the empty alternative. Open routes say `security: []`.
        "security": [{}, {"basicAuth": []}, {"bearerAuth": []}],
    }


SECURITY_SCHEMES: dict[str, Any] = {
    "basicAuth": {
        "type": "http",
        "scheme": "basic",
        "description": "api.http.auth users (docs/security.md)",
    },
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "a JWT verified with api.auth.publicKey; role and prefix claims "
        "(docs/security.md)",
    },
}
