"""GET /callbacks?promiseId=… (http-api.md §3.5, D11): the callbacks and subscriptions still
waiting on a promise, through real HTTP on both stores (the session server process)."""

from __future__ import annotations

import httpx
import pytest

from resonate.client import AsyncResonateClient, ResonateClient, list_callbacks_request
from resonate.core.search import encode_cursor
from tests.server.promise_setup import complete, now_ms, setup

HOUR = 3_600_000


def callback(api: httpx.Client, leaf: str, root: str, recv: object, timeout: int) -> dict:
    body = {"rootPromiseId": root, "recv": recv, "timeout": timeout}
    response = api.post(f"/promises/callback/{leaf}", json=body)
    assert response.status_code == 201, response.text
    return response.json()["callback"]


def subscribe(api: httpx.Client, promise_id: str, sub_id: str, recv: object, timeout: int) -> dict:
    body = {"id": sub_id, "recv": recv, "timeout": timeout}
    response = api.post(f"/promises/subscribe/{promise_id}", json=body)
    assert response.status_code == 201, response.text
    return response.json()["callback"]


def list_page(api: httpx.Client, **params: object) -> dict:
    response = api.get("/callbacks", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"cursor", "callbacks"}
    return body


def ids(page: dict) -> list[str]:
    return [item["id"] for item in page["callbacks"]]


def register_many(api: httpx.Client, promise_id: str, count: int) -> list[str]:
    """``count`` subscriptions on the promise, in this order; their ids."""
    timeout = now_ms() + HOUR
    return [subscribe(api, promise_id, f"s{i}", "default", timeout)["id"] for i in range(count)]


def assert_error(response: httpx.Response, field: str | None = None) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == 40000
    if field is not None:
        assert error["details"][0]["metadata"]["field"] == field


# ---- what is listed ----------------------------------------------------------------------------


def test_lists_resume_callbacks_and_subscriptions_oldest_first_with_their_shape(api, uid):
    """Registration order, not id order: the first registered sorts last by id."""
    leaf = f"{uid}-leaf"
    setup(api, leaf, "P")
    timeout = now_ms() + HOUR
    physical = {"type": "poll", "data": {"group": "g", "id": "w1"}}
    before = now_ms()
    first = callback(api, leaf, f"{uid}-z-root", "poll://any@g", timeout)
    second = subscribe(api, leaf, "a-sub", physical, timeout + 1)
    third = callback(api, leaf, f"{uid}-m-root", physical, 0)
    after = now_ms()

    page = list_page(api, promiseId=leaf)
    assert page["cursor"] is None
    assert page["callbacks"] == [
        {
            "id": f"__resume:{uid}-z-root:{leaf}",
            "type": "resume",
            "promiseId": leaf,
            "rootPromiseId": f"{uid}-z-root",
            "recv": "poll://any@g",
            "timeout": timeout,
            "createdOn": first["createdOn"],
        },
        {
            "id": f"__notify:{leaf}:a-sub",
            "type": "notify",
            "promiseId": leaf,
            "rootPromiseId": leaf,
            "recv": physical,
            "timeout": timeout + 1,
            "createdOn": second["createdOn"],
        },
        {
            "id": f"__resume:{uid}-m-root:{leaf}",
            "type": "resume",
            "promiseId": leaf,
            "rootPromiseId": f"{uid}-m-root",
            "recv": physical,
            "timeout": 0,
            "createdOn": third["createdOn"],
        },
    ]
    assert all(before <= item["createdOn"] <= after for item in page["callbacks"])


def test_only_the_named_promise_is_listed(api, uid):
    setup(api, f"{uid}-a", "P")
    setup(api, f"{uid}-ab", "P")
    subscribe(api, f"{uid}-a", "s", "default", 0)
    subscribe(api, f"{uid}-ab", "s", "default", 0)
    callback(api, f"{uid}-ab", f"{uid}-a", "default", 0)  # rooted at -a, waiting on -ab
    assert ids(list_page(api, promiseId=f"{uid}-a")) == [f"__notify:{uid}-a:s"]
    # promiseId is exact: `*` is an ordinary character here, not a pattern.
    assert list_page(api, promiseId=f"{uid}-a*") == {"cursor": None, "callbacks": []}


def test_a_repeated_registration_is_listed_once_as_first_stored(api, uid):
    setup(api, uid, "P")
    subscribe(api, uid, "s", "first", 0)
    again = api.post(f"/promises/subscribe/{uid}", json={"id": "s", "recv": "second"})
    assert again.status_code == 200
    assert [item["recv"] for item in list_page(api, promiseId=uid)["callbacks"]] == ["first"]


@pytest.mark.parametrize("state", ["RESOLVED", "REJECTED", "REJECTED_CANCELED"])
def test_fired_registrations_are_gone_once_the_promise_completes(api, uid, state):
    leaf = f"{uid}-leaf"
    setup(api, leaf, "P")
    callback(api, leaf, f"{uid}-root", "default", 0)
    subscribe(api, leaf, "s", "default", 0)
    assert len(list_page(api, promiseId=leaf)["callbacks"]) == 2
    assert complete(api, leaf, state).status_code == 201
    assert list_page(api, promiseId=leaf) == {"cursor": None, "callbacks": []}
    task = api.get("/tasks", params={"id": f"__notify:{leaf}:s"}).json()["tasks"]
    assert [t["id"] for t in task] == [f"__notify:{leaf}:s"]  # it became a task


def test_registrations_fired_by_a_timeout_are_gone_too(api, uid):
    setup(api, uid, "P!")  # overdue: registration does not time it out (§3.1)
    subscribe(api, uid, "s", "default", 0)
    assert api.get(f"/promises/{uid}").json()["state"] == "REJECTED_TIMEDOUT"
    assert list_page(api, promiseId=uid) == {"cursor": None, "callbacks": []}


@pytest.mark.parametrize("before", ["∅", "P", "R"], ids=["unknown", "pending", "resolved"])
def test_a_promise_without_registrations_gives_an_empty_list(api, uid, before):
    setup(api, uid, before)
    assert list_page(api, promiseId=uid) == {"cursor": None, "callbacks": []}


@pytest.mark.parametrize("suffix", ["%00", "%FF", "%ED%A0%80"], ids=["nul", "ff", "surrogate"])
def test_an_id_no_promise_can_have_gives_an_empty_list(api, uid, suffix):
    """PostgreSQL text cannot hold U+0000, nor an id invalid UTF-8: no stored id matches."""
    response = api.get(f"/callbacks?promiseId={uid}{suffix}")
    assert response.status_code == 200, response.text
    assert response.json() == {"cursor": None, "callbacks": []}


def test_ids_with_slashes_and_unusual_characters(api, uid):
    leaf = f"{uid}/a b?c#d%e&f=g"
    assert api.post("/promises", json={"id": leaf, "timeout": now_ms() + HOUR}).status_code == 201
    body = {"promiseId": leaf, "id": "s", "recv": "default", "timeout": 0}
    assert api.post("/subscriptions", json=body).status_code == 201
    assert ids(list_page(api, promiseId=leaf)) == [f"__notify:{leaf}:s"]


# ---- paging (§1.8) -----------------------------------------------------------------------------


def test_pages_with_limit_and_cursor_in_registration_order(api, uid):
    setup(api, uid, "P")
    registered = register_many(api, uid, 7)
    page = list_page(api, promiseId=uid, limit=3)
    seen, pages = ids(page), 1
    while page["cursor"] is not None:
        assert len(page["callbacks"]) == 3
        # A cursor carries the whole query: other parameters are ignored.
        page = list_page(api, cursor=page["cursor"], promiseId="nothing", limit=1)
        seen += ids(page)
        pages += 1
    assert seen == registered
    assert pages == 3


def test_a_page_exactly_full_then_an_empty_last_page(api, uid):
    setup(api, uid, "P")
    registered = register_many(api, uid, 2)
    first = list_page(api, promiseId=uid, limit=2)
    assert ids(first) == registered and first["cursor"] is not None
    assert list_page(api, cursor=first["cursor"]) == {"cursor": None, "callbacks": []}


def test_a_cursor_sees_registrations_made_after_it(api, uid):
    setup(api, uid, "P")
    register_many(api, uid, 1)
    first = list_page(api, promiseId=uid, limit=1)
    later = subscribe(api, uid, "later", "default", 0)["id"]
    assert ids(list_page(api, cursor=first["cursor"])) == [later]


@pytest.mark.parametrize("limit", ["0", ""])
def test_limit_zero_or_empty_means_100(api, uid, limit):
    setup(api, uid, "P")
    registered = register_many(api, uid, 3)
    assert ids(list_page(api, promiseId=uid, limit=limit)) == registered


# ---- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"promiseId": ""}, {"limit": "5"}, {"id": "x"}])
def test_promise_id_is_required(api, params):
    assert_error(api.get("/callbacks", params=params), "promiseId")


@pytest.mark.parametrize("limit", ["101", "-1", "ten", "1.5"])
def test_a_bad_limit_is_400(api, uid, limit):
    assert_error(api.get("/callbacks", params={"promiseId": uid, "limit": limit}), "limit")


@pytest.mark.parametrize("cursor", ["", "not-a-cursor", "%%%", "e30"])  # e30 is `{}`
def test_a_bad_cursor_is_400(api, cursor):
    assert_error(api.get("/callbacks", params={"cursor": cursor, "promiseId": "x"}))


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({}, 200),
        ({"promiseId": ""}, 400),
        ({"promiseId": 7}, 400),
        ({"limit": 0}, 400),
        ({"limit": 101}, 400),
        ({"limit": "10"}, 400),
        ({"after": "5"}, 400),
        ({"after": None}, 400),
        ({"after": 2**63}, 400),
    ],
)
def test_a_tampered_cursor_is_400(api, uid, change, status):
    query = {"promiseId": uid, "limit": 10, "after": 0}
    cursor = encode_cursor("callbacks", {**query, **change})
    assert api.get("/callbacks", params={"cursor": cursor}).status_code == status


def test_a_cursor_of_another_search_is_refused(api, uid):
    for index in range(2):
        setup(api, f"{uid}-{index}", "P")
    cursor = api.get("/promises", params={"id": f"{uid}-*", "limit": 1}).json()["cursor"]
    assert cursor is not None
    assert_error(api.get("/callbacks", params={"cursor": cursor}))


def test_post_and_get_share_the_path_and_other_methods_are_405(api):
    response = api.delete("/callbacks")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "POST"}


def test_the_route_needs_credentials_when_auth_is_on(server_factory, tmp_path):
    secured = server_factory(tmp_path, extra_args=["--api-http-auth", "alice=s3cret"]).start()
    response = httpx.get(secured.url + "/callbacks", params={"promiseId": "p"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 40100
    authorized = httpx.get(
        secured.url + "/callbacks", params={"promiseId": "p"}, auth=("alice", "s3cret")
    )
    assert authorized.json() == {"cursor": None, "callbacks": []}


# ---- the OpenAPI document (D12) ----------------------------------------------------------------


def test_the_route_is_in_the_openapi_document(api):
    document = api.get("/openapi.json").json()
    operation = document["paths"]["/callbacks"]["get"]
    assert operation["operationId"] == "ListCallbacks"
    assert "security" not in operation  # authenticated like every other API route
    assert {"400", "401", "403"} <= set(operation["responses"])
    response = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert response == {"$ref": "#/components/schemas/CallbackPage"}
    params = {p["name"]: p for p in operation["parameters"]}
    assert {"promiseId", "limit", "cursor"} <= set(params)
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 0, "maximum": 100}
    schemas = document["components"]["schemas"]
    page = schemas["CallbackPage"]
    assert page["properties"]["callbacks"]["items"] == {"$ref": "#/components/schemas/ExtCallback"}
    callback_schema = schemas["ExtCallback"]
    assert set(callback_schema["required"]) == {
        "id",
        "type",
        "promiseId",
        "rootPromiseId",
        "recv",
        "timeout",
        "createdOn",
    }
    assert callback_schema["properties"]["type"]["enum"] == ["resume", "notify"]
    assert "post" in document["paths"]["/callbacks"]  # the registration form is still there


# ---- the client (shared by the CLI and the TUI) ------------------------------------------------


def test_list_callbacks_request_sends_the_cursor_alone():
    assert list_callbacks_request("p").params == (("promiseId", "p"),)
    assert list_callbacks_request("p", limit=5).params == (("promiseId", "p"), ("limit", "5"))
    assert list_callbacks_request("p", 5, "c").params == (("cursor", "c"),)
    assert list_callbacks_request("p").path == "/callbacks"


def test_sync_client(server, uid):
    with ResonateClient(server.url) as client:
        client.create_promise(uid, now_ms() + HOUR)
        registered = [
            client.create_subscription(uid, f"s{i}", "default", 0).body["callback"]["id"]
            for i in range(5)
        ]
        page = client.list_callbacks(uid, limit=2).body
        assert [item["id"] for item in page["callbacks"]] == registered[:2]
        rest = client.list_callbacks(uid, cursor=page["cursor"]).body
        assert [item["id"] for item in rest["callbacks"]] == registered[2:4]
        assert [item["id"] for item in client.iter_callbacks(uid, limit=2)] == registered
        assert [item["id"] for item in client.iter_callbacks(uid, 2, page["cursor"])] == (
            registered[2:]
        )
        assert list(client.iter_callbacks(f"{uid}-unknown")) == []


async def test_async_client(server, uid):
    async with AsyncResonateClient(server.url) as client:
        await client.create_promise(uid, now_ms() + HOUR)
        registered = [
            (await client.create_callback(uid, f"{uid}-r{i}", "default", 0)).body["callback"]["id"]
            for i in range(3)
        ]
        page = (await client.list_callbacks(uid, limit=2)).body
        assert [item["id"] for item in page["callbacks"]] == registered[:2]
        assert page["callbacks"][0]["type"] == "resume"
        assert [item["id"] async for item in client.iter_callbacks(uid, limit=2)] == registered
