"""transitions.md §6 (V1-V15) and the request/error conventions of http-api.md §1.3, §1.6, §1.7,
over HTTP against a real server process, one case per row.

Every refused request is followed by a check that it changed nothing: a refused create leaves
no promise under the test's id prefix, a refused complete leaves the promise as it was.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.server.promise_setup import HOUR_MS, create, now_ms

INT64_MAX = 9_223_372_036_854_775_807
INT64_MIN = -9_223_372_036_854_775_808
MAX_ID_BYTES = 1024

# http-api.md §1.7: the message of every code (the parenthesised remarks are not part of it).
MESSAGES = {
    40000: "The request is invalid",
    40301: "The promise has already been resolved",
    40400: "The specified promise was not found",
    40405: "The requested route does not exist",
    40500: "The method is not allowed on this route",
    40900: "The specified promise already exists",
    41200: "The task precondition failed",
    41300: "The request body is too large",
}
DETAIL_TYPES = {"FieldValidationError", "RequestError", "ServerError"}

ID = "$id"  # replaced by the test's promise id in request bodies


# ---- helpers --------------------------------------------------------------------------------


def encode(body: Any, pid: str) -> bytes:
    """A request body: raw text/bytes as written (to send what json.dumps cannot), or JSON.

    `$id` is replaced by ``pid``. json.dumps escapes non-ASCII, so lone surrogates survive.
    """
    if isinstance(body, bytes):
        return body.replace(ID.encode(), pid.encode())
    text = body if isinstance(body, str) else json.dumps(body)
    return text.replace(ID, pid).encode("utf-8")


def assert_error(response: httpx.Response, code: int, field: str | None = None) -> dict:
    """The §1.6 error body: code, §1.7 message, non-empty details; a field error names it."""
    assert response.status_code == code // 100, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code
    assert error["message"] == MESSAGES[code]
    details = error["details"]
    assert isinstance(details, list) and details
    for detail in details:
        assert detail["@type"] in DETAIL_TYPES
        assert isinstance(detail["message"], str) and detail["message"]
        assert detail["domain"] == ("server" if code >= 50000 else "request")
    if field is not None:
        named = [
            d
            for d in details
            if d["@type"] == "FieldValidationError"
            and re.search(rf"(?<![\w.]){re.escape(field)}(?![\w.])", d["message"])
        ]
        assert named, f"no FieldValidationError naming {field!r}: {details}"
    return error


def assert_nothing_created(api: httpx.Client, uid: str) -> None:
    page = api.get("/promises", params={"id": f"{uid}*"}).json()
    assert page["promises"] == [], page


def pending(api: httpx.Client, pid: str) -> dict:
    response = create(api, pid, key="ck")
    assert response.status_code == 201, response.text
    return response.json()


# ---- create: refused bodies (V4, V5, V7, V8, V10, V13, wrong types) -----------------------

FUTURE = 4_102_444_800_000  # 2100-01-01, a deadline far in the future


def refused_create_cases() -> list[pytest.param]:
    cases: list[pytest.param] = []

    def add(rule: str, name: str, body: Any, field: str | None) -> None:
        cases.append(pytest.param(body, field, id=f"{rule}-{name}"))

    # V4: id missing, "", or not a string.
    add("V4", "id-missing", {"timeout": FUTURE}, "id")
    add("V4", "id-empty", {"id": "", "timeout": FUTURE}, "id")
    add("V4", "id-null", {"id": None, "timeout": FUTURE}, "id")
    for name, value in [("number", 5), ("bool", True), ("list", [ID]), ("object", {"id": ID})]:
        add("V4", f"id-{name}", {"id": value, "timeout": FUTURE}, "id")
    # V5: timeout must be a JSON integer in int64; no fractions, exponents, strings, booleans.
    for name, raw in [
        ("1.5", "1.5"),
        ("2.0", "2.0"),
        ("1e3", "1e3"),
        ("1E3", "1E3"),
        ("-0.0", "-0.0"),
        ("string", '"1"'),
        ("true", "true"),
        ("false", "false"),
        ("int64-max+1", str(INT64_MAX + 1)),
        ("int64-min-1", str(INT64_MIN - 1)),
        ("huge", "1" + "0" * 40),
        ("list", "[1]"),
        ("object", '{"ms": 1}'),
    ]:
        add("V5", f"timeout-{name}", f'{{"id": "{ID}", "timeout": {raw}}}', "timeout")
    # V7: param.data is standard base64 with padding (RFC 4648 §4).
    for name, data in [
        ("%%", "%%"),
        ("unpadded-YQ", "YQ"),
        ("urlsafe--_8=", "-_8="),
        ("bad-padding-Y===", "Y==="),
        ("embedded-space", "YQ =="),
        ("non-ascii", "é"),
    ]:
        add("V7", f"param.data-{name}", {"id": ID, "param": {"data": data}}, "param.data")
    for name, value in [("number", 5), ("bool", True), ("list", ["YQ=="]), ("object", {})]:
        add("types", f"param.data-{name}", {"id": ID, "param": {"data": value}}, "param.data")
    # V8 and §1.3: tags and value headers are {string: string}.
    for name, value in [
        ("int", {"a": 1}),
        ("bool", {"a": True}),
        ("null", {"a": None}),
        ("object", {"a": {"b": "c"}}),
        ("list", ["a"]),
        ("string", "a=b"),
        ("number", 1),
    ]:
        add("V8", f"tags-{name}", {"id": ID, "tags": value}, "tags")
        add(
            "types",
            f"param.headers-{name}",
            {"id": ID, "param": {"headers": value}},
            "param.headers",
        )
    for name, value in [("string", "YQ=="), ("number", 1), ("list", []), ("bool", False)]:
        add("types", f"param-{name}", {"id": ID, "param": value}, "param")
    # V13 and §1.3: no U+0000, no unpaired surrogates, at most 1024 UTF-8 bytes.
    add("V13", "id-nul", {"id": ID + "\u0000x", "timeout": FUTURE}, "id")
    add("V13", "id-1025-bytes", {"id": ID + "x" * (MAX_ID_BYTES + 1), "timeout": FUTURE}, "id")
    add("V13", "id-1025-bytes-multibyte", {"id": ID + "é" * 513, "timeout": FUTURE}, "id")
    add("1.3", "id-lone-surrogate", f'{{"id": "{ID}\\ud800", "timeout": {FUTURE}}}', "id")
    add("1.3", "tag-key-nul", {"id": ID, "tags": {"a\u0000": "b"}}, "tags")
    add("1.3", "tag-value-surrogate", f'{{"id": "{ID}", "tags": {{"a": "\\udc00"}}}}', "tags")
    add(
        "1.3",
        "param-header-nul",
        {"id": ID, "param": {"headers": {"h": "\u0000"}}},
        "param.headers",
    )
    return cases


@pytest.mark.parametrize(("body", "field"), refused_create_cases())
def test_refused_create(api, uid, body, field):
    response = api.post("/promises", content=encode(body, uid))
    assert_error(response, 40000, field)
    assert_nothing_created(api, uid)


# V10 and §1.3: a body that is not a JSON object is refused wherever a body is required.
# Text templates are encoded as named (UTF-8 unless said otherwise); bytes are sent as written.
NOT_AN_OBJECT = [
    pytest.param("", id="V10-empty-body"),
    pytest.param("   \n", id="V10-whitespace-only"),
    pytest.param('{"id": "$id", "timeout": 1', id="V10-malformed-truncated"),
    pytest.param("{'id': '$id'}", id="V10-malformed-single-quotes"),
    pytest.param('{"id": "$id",}', id="V10-malformed-trailing-comma"),
    pytest.param('{"id": "$id", "x": NaN}', id="V10-NaN-is-not-JSON"),
    pytest.param('{"id": "$id", "x": -Infinity}', id="V10-Infinity-is-not-JSON"),
    pytest.param(b'{"id": "$id\xff"}', id="V10-invalid-utf8"),
    pytest.param(b'{"id": "$id\xed\xa0\x80"}', id="V10-utf8-encoded-surrogate"),
    pytest.param(('{"id": "$id"}', "utf-16"), id="V10-utf16-with-bom"),
    pytest.param(('{"id": "$id"}', "utf-16-le"), id="V10-utf16-le"),
    pytest.param(('{"id": "$id"}', "utf-32"), id="V10-utf32"),
    pytest.param('[{"id": "$id"}]', id="V10-json-array"),
    pytest.param('"$id"', id="V10-json-string"),
    pytest.param("5", id="V10-json-number"),
    pytest.param("null", id="V10-json-null"),
    pytest.param("true", id="V10-json-true"),
]


def raw_body(template: str | bytes | tuple[str, str], pid: str, key: str = "id") -> bytes:
    """A NOT_AN_OBJECT body for ``pid``; ``key`` renames the `id` key (for completes)."""
    if isinstance(template, bytes):
        return template.replace(b'"id"', f'"{key}"'.encode()).replace(ID.encode(), pid.encode())
    text, codec = template if isinstance(template, tuple) else (template, "utf-8")
    return text.replace('"id"', f'"{key}"').replace(ID, pid).encode(codec)


@pytest.mark.parametrize("template", NOT_AN_OBJECT)
def test_create_body_not_a_json_object(api, uid, template):
    response = api.post(
        "/promises", content=raw_body(template, uid), headers={"content-type": "application/json"}
    )
    assert_error(response, 40000)
    assert_nothing_created(api, uid)


@pytest.mark.parametrize("template", NOT_AN_OBJECT)
def test_complete_body_not_a_json_object(api, uid, template):
    before = pending(api, uid)
    # The `id` value becomes a valid state, so only the encoding or the shape is wrong.
    content = raw_body(template, "RESOLVED", key="state")
    response = api.patch(f"/promises/{uid}", content=content)
    assert_error(response, 40000)
    assert api.get(f"/promises/{uid}").json() == before


# ---- complete: refused bodies (V1, V2, V7, wrong types) ----------------------------------


def refused_complete_cases() -> list[pytest.param]:
    cases: list[pytest.param] = []

    def add(rule: str, name: str, body: Any, field: str) -> None:
        cases.append(pytest.param(body, field, id=f"{rule}-{name}"))

    for state in [
        "PENDING",
        "pending",
        "REJECTED_TIMEDOUT",
        "rejected_timedout",
        "TIMEDOUT",
        "CANCELED",
        "RESOLVED ",
        "",
        "resolvedx",
    ]:
        add("V1", f"state-{state!r}", {"state": state}, "state")
    add("V2", "state-missing", {"value": {"data": "YQ=="}}, "state")
    add("V2", "state-null", {"state": None}, "state")
    for name, value in [("number", 2), ("bool", True), ("list", ["RESOLVED"]), ("object", {})]:
        add("types", f"state-{name}", {"state": value}, "state")
    add("D15", "state-key-is-case-sensitive", {"State": "RESOLVED"}, "state")
    for data in ["%%", "YQ", "-_8="]:
        add(
            "V7", f"value.data-{data}", {"state": "RESOLVED", "value": {"data": data}}, "value.data"
        )
    add("types", "value.data-number", {"state": "RESOLVED", "value": {"data": 1}}, "value.data")
    add("types", "value-string", {"state": "RESOLVED", "value": "YQ=="}, "value")
    add("types", "value-list", {"state": "RESOLVED", "value": []}, "value")
    add(
        "types",
        "value.headers-int",
        {"state": "RESOLVED", "value": {"headers": {"a": 1}}},
        "value.headers",
    )
    add(
        "types",
        "value.headers-list",
        {"state": "RESOLVED", "value": {"headers": []}},
        "value.headers",
    )
    return cases


@pytest.mark.parametrize(("body", "field"), refused_complete_cases())
def test_refused_complete(api, uid, body, field):
    before = pending(api, uid)
    response = api.patch(f"/promises/{uid}", content=encode(body, uid))
    assert_error(response, 40000, field)
    assert api.get(f"/promises/{uid}").json() == before


# ---- V9 / D16: the strict header ------------------------------------------------------------

# A promise resolved with completion key "k", then rejected with key "k": strict answers 403
# (requested state differs), non-strict deduplicates with 200 (§2.6). That tells the parsed
# value apart, not just acceptance.
STRICT_HEADER = [
    *(
        pytest.param(raw, True, id=f"V9-{raw}-is-true")
        for raw in ["true", "True", "TRUE", "tRuE", "t", "T", "1"]
    ),
    *(
        pytest.param(raw, False, id=f"V9-{raw}-is-false")
        for raw in ["false", "False", "FALSE", "f", "F", "0"]
    ),
    pytest.param("", False, id="V9-empty-is-false"),
    pytest.param(None, False, id="V9-absent-is-false"),
    *(
        pytest.param(raw, None, id=f"V9-{raw}-is-400")
        for raw in ["yes", "no", "2", "-1", "on", "truee", "10", "y"]
    ),
]


@pytest.mark.parametrize(("raw", "strict"), STRICT_HEADER)
def test_strict_header(api, uid, raw, strict):
    assert create(api, uid).status_code == 201
    resolved = api.patch(
        f"/promises/{uid}", json={"state": "RESOLVED"}, headers={"idempotency-key": "k"}
    )
    assert resolved.status_code == 201
    headers = {"idempotency-key": "k"}
    if raw is not None:
        headers["strict"] = raw

    response = api.patch(f"/promises/{uid}", json={"state": "REJECTED"}, headers=headers)

    if strict is None:
        assert_error(response, 40000, "strict")
    elif strict:
        assert_error(response, 40301)
    else:
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "RESOLVED"
    assert api.get(f"/promises/{uid}").json() == resolved.json()


def test_v9_bad_strict_header_on_create_creates_nothing(api, uid):
    response = api.post("/promises", json={"id": uid, "timeout": FUTURE}, headers={"strict": "yes"})
    assert_error(response, 40000, "strict")
    assert_nothing_created(api, uid)


# ---- accepted inputs (V3, V6, V11, V12, V13, V15, §1.3) -----------------------------------


@pytest.mark.parametrize(
    ("state", "stored"),
    [
        pytest.param("resolved", "RESOLVED", id="V3-resolved"),
        pytest.param("Rejected", "REJECTED", id="V3-Rejected"),
        pytest.param("rejected_CANCELED", "REJECTED_CANCELED", id="V3-rejected_CANCELED"),
        pytest.param("RESOLVED", "RESOLVED", id="V3-RESOLVED"),
    ],
)
def test_v3_complete_state_is_case_insensitive(api, uid, state, stored):
    pending(api, uid)
    response = api.patch(f"/promises/{uid}", json={"state": state})
    assert response.status_code == 201, response.text
    assert response.json()["state"] == stored
    assert api.get(f"/promises/{uid}").json()["state"] == stored


@pytest.mark.parametrize(
    ("raw", "timeout", "overdue"),
    [
        pytest.param("-1", -1, True, id="V6-minus-one"),
        pytest.param(str(INT64_MIN), INT64_MIN, True, id="1.3-int64-min"),
        pytest.param(str(INT64_MAX), INT64_MAX, False, id="1.3-int64-max"),
        pytest.param("0", 0, True, id="2.4-zero"),
        pytest.param("null", 0, True, id="2.4-null-means-0"),
        pytest.param("-0", 0, True, id="1.3-minus-zero-is-an-integer"),
    ],
)
def test_accepted_timeouts(api, uid, raw, timeout, overdue):
    response = api.post("/promises", content=f'{{"id": "{uid}", "timeout": {raw}}}')
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "PENDING"
    assert response.json()["timeout"] == timeout
    read = api.get(f"/promises/{uid}").json()
    assert read["state"] == ("REJECTED_TIMEDOUT" if overdue else "PENDING")


ACCEPTED_CREATE = [
    # (body, expected param output, expected tags output)
    pytest.param({"param": None, "tags": None}, {}, None, id="V12-param-and-tags-null"),
    pytest.param(
        {"param": {"headers": None, "data": None}}, {}, None, id="V12-headers-and-data-null"
    ),
    pytest.param({"param": {}, "tags": {}}, {}, None, id="V15-empty-objects"),
    pytest.param({"param": {"data": ""}}, {}, None, id="V15-empty-data-left-out"),
    pytest.param({"param": {"headers": {}}}, {}, None, id="V15-empty-headers-left-out"),
    pytest.param(
        {"param": {"headers": {"h": "v"}, "data": "YQ=="}},
        {"headers": {"h": "v"}, "data": "YQ=="},
        None,
        id="1.3-full-value",
    ),
    pytest.param(
        {"param": {"data": "+/8="}}, {"data": "+/8="}, None, id="V7-standard-alphabet-accepted"
    ),
    pytest.param({"tags": {"a": "", "b.c": "d"}}, {}, {"a": "", "b.c": "d"}, id="1.3-tags-strings"),
    pytest.param(
        {"unknown": 1, "Id": 5, "TIMEOUT": "x", "param": {"extra": [1]}},
        {},
        None,
        id="V11-unknown-keys-ignored",
    ),
]


@pytest.mark.parametrize(("extra", "param", "tags"), ACCEPTED_CREATE)
def test_accepted_create_bodies(api, uid, extra, param, tags):
    response = api.post("/promises", json={"id": uid, "timeout": FUTURE, **extra})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["param"] == param
    assert body["value"] == {}
    assert body.get("tags") == tags
    assert body["timeout"] == FUTURE
    assert "null" not in response.text  # V15: never "data": null or "headers": null
    assert api.get(f"/promises/{uid}").json() == body


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="V12-value-null"),
        pytest.param({"headers": None, "data": None}, id="V12-members-null"),
        pytest.param({"data": ""}, id="V15-empty-data"),
        pytest.param("absent", id="V12-value-absent"),
    ],
)
def test_v12_v15_empty_completion_value_is_empty_object(api, uid, value):
    pending(api, uid)
    body: dict[str, Any] = {"state": "RESOLVED"}
    if value != "absent":
        body["value"] = value
    response = api.patch(f"/promises/{uid}", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["value"] == {}
    assert '"data"' not in response.text
    assert api.get(f"/promises/{uid}").json()["value"] == {}


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8"],
)
def test_body_is_json_whatever_the_content_type(api, uid, content_type):
    """§1.3: the server parses the body as JSON whatever its Content-Type."""
    headers = {"content-type": content_type} if content_type else {}
    response = api.post(
        "/promises", content=json.dumps({"id": uid, "timeout": FUTURE}), headers=headers
    )
    assert response.status_code == 201, response.text


def id_of_bytes(uid: str, size: int, filler: str = "x") -> str:
    """An id of exactly ``size`` UTF-8 bytes starting with ``uid``."""
    room = size - len(uid.encode())
    width = len(filler.encode())
    return uid + filler * (room // width) + "x" * (room % width)


@pytest.mark.parametrize(
    "filler",
    [
        pytest.param("x", id="V13-1-byte-chars"),
        pytest.param("é", id="V13-2-byte-chars"),
        pytest.param("€", id="V13-3-byte-chars"),
        pytest.param("😀", id="V13-4-byte-chars"),
    ],
)
def test_v13_id_of_exactly_1024_bytes_is_accepted(api, uid, filler):
    pid = id_of_bytes(uid, MAX_ID_BYTES, filler)
    assert len(pid.encode()) == MAX_ID_BYTES
    assert create(api, pid).status_code == 201
    assert api.get(f"/promises/{pid}").json()["id"] == pid
    response = api.patch(f"/promises/{pid}", json={"state": "RESOLVED"})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        pytest.param("GET", "x" * (MAX_ID_BYTES + 1), id="V13-read-1025-bytes"),
        pytest.param("PATCH", "x" * (MAX_ID_BYTES + 1), id="V13-complete-1025-bytes"),
        pytest.param("GET", "a%00b", id="V13-read-nul"),
        pytest.param("PATCH", "a%00b", id="V13-complete-nul"),
    ],
)
def test_v13_path_ids_are_validated_too(api, uid, method, suffix):
    path = f"/promises/{uid}{suffix}"
    response = api.request(method, path, json={"state": "RESOLVED"})
    assert_error(response, 40000)
    assert_nothing_created(api, uid)


# ---- §1.6: the error body of every non-2xx answer ------------------------------------------


def error_cases() -> list[pytest.param]:
    def missing_id(api, uid):
        return api.post("/promises", json={"timeout": FUTURE})

    def already_resolved(api, uid):
        pending(api, uid)
        api.patch(f"/promises/{uid}", json={"state": "RESOLVED"})
        return api.patch(f"/promises/{uid}", json={"state": "REJECTED"})

    def not_found(api, uid):
        return api.get(f"/promises/{uid}")

    def not_found_on_complete(api, uid):
        return api.patch(f"/promises/{uid}", json={"state": "RESOLVED"})

    def exists(api, uid):
        pending(api, uid)
        return create(api, uid)

    def exists_with_other_key(api, uid):
        pending(api, uid)
        return create(api, uid, key="other")

    def unknown_route(api, uid):
        return api.get(f"/nothing/{uid}")

    def wrong_method(api, uid):
        return api.delete(f"/promises/{uid}")

    def fenced(api, uid):
        return api.post(
            "/promises",
            json={"id": uid, "timeout": FUTURE},
            headers={"task-id": f"__invoke:{uid}", "task-counter": "1"},
        )

    return [
        pytest.param(missing_id, 40000, "id", id="1.6-400-field"),
        pytest.param(already_resolved, 40301, None, id="1.6-403-error-only"),
        pytest.param(not_found, 40400, None, id="1.6-404-error-only"),
        pytest.param(not_found_on_complete, 40400, None, id="1.6-404-complete-error-only"),
        pytest.param(exists, 40900, None, id="1.6-409-error-only"),
        pytest.param(exists_with_other_key, 40900, None, id="1.6-409-other-key-error-only"),
        pytest.param(unknown_route, 40405, None, id="1.6-404-route"),
        pytest.param(wrong_method, 40500, None, id="1.6-405"),
        pytest.param(fenced, 41200, None, id="1.6-412"),
    ]


@pytest.mark.parametrize(("send", "code", "field"), error_cases())
def test_error_body(api, uid, send, code, field):
    response = send(api, uid)
    error = assert_error(response, code, field)
    if field is None:
        assert all(d["@type"] == "RequestError" for d in error["details"])


def test_field_errors_are_field_validation_errors(api, uid):
    """§1.6: FieldValidationError, domain request, message `The field id is required.`"""
    response = api.post("/promises", json={"timeout": FUTURE})
    detail = assert_error(response, 40000, "id")["details"][0]
    assert detail["@type"] == "FieldValidationError"
    assert detail["domain"] == "request"
    assert detail["message"] == "The field id is required."


def test_state_errors_name_the_allowed_states(api, uid):
    """§2.6: `The field state must be one of resolved, rejected, rejected_canceled.`"""
    pending(api, uid)
    response = api.patch(f"/promises/{uid}", json={"state": "PENDING"})
    messages = [d["message"] for d in assert_error(response, 40000, "state")["details"]]
    assert "The field state must be one of resolved, rejected, rejected_canceled." in messages


# ---- V14 / D13: bodies over api.http.maxBodySize --------------------------------------------

BODY_LIMIT = 1024


@pytest.fixture
def small_server(server_factory, tmp_path):
    return server_factory(
        tmp_path, extra_args=["--api-http-max-body-size", str(BODY_LIMIT)]
    ).start()


def padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON of exactly ``size`` bytes (padding in an unknown key, V11)."""
    text = json.dumps({**body, "pad": ""})
    missing = size - len(text.encode())
    assert missing >= 0
    return json.dumps({**body, "pad": "x" * missing}).encode()


def test_v14_body_size_limit(small_server):
    with httpx.Client(base_url=small_server.url, timeout=30) as api:
        timeout = now_ms() + HOUR_MS

        # Exactly at the limit: accepted.
        at_limit = padded({"id": "limit", "timeout": timeout}, BODY_LIMIT)
        response = api.post("/promises", content=at_limit)
        assert response.status_code == 201, response.text

        # One byte over, declared by Content-Length: 413 JSON, nothing created.
        over = padded({"id": "over", "timeout": timeout}, BODY_LIMIT + 1)
        assert_error(api.post("/promises", content=over), 41300)

        # Far over, sent chunked (no Content-Length): 413 while reading.
        def chunks():
            yield b'{"id": "chunked", "timeout": 1, "pad": "'
            for _ in range(16):
                yield b"x" * 512
            yield b'"}'

        response = api.post("/promises", content=chunks())
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert_error(response, 41300)

        # A completion over the limit changes nothing.
        before = api.get("/promises/limit").json()
        over_patch = padded({"state": "RESOLVED"}, 4 * BODY_LIMIT)
        assert_error(api.patch("/promises/limit", content=over_patch), 41300)
        assert api.get("/promises/limit").json() == before

        # D13 holds on routes that never read a body, and on unknown routes.
        assert_error(api.request("GET", "/promises/limit", content=over), 41300)
        assert_error(api.request("GET", "/no/such/route", content=over), 41300)

        for pid in ("over", "chunked"):
            assert api.get(f"/promises/{pid}").status_code == 404
        # The server still serves after refusing (the refused bodies did not wedge it).
        assert api.get("/healthz").json() == {"status": "ok"}
