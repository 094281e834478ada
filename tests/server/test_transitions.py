"""transitions.md §1-§3 over HTTP against a real server process, one case per row."""

from __future__ import annotations

import pytest

from tests.server.promise_setup import (
    KEY_RELATIONS,
    NOT_MATCHING,
    STATE_AFTER,
    STATE_NAMES,
    complete,
    create,
    setup,
)

CODE = {"R": 40301, "J": 40302, "C": 40303, "T": 40304, "Rt": 40301}


def create_cases() -> list[pytest.param]:
    cases = []

    def add(
        rule: str,
        before: str,
        relation: str,
        strict: bool,
        status: int,
        after: str,
        code: int | None = None,
    ) -> None:
        cases.append(
            pytest.param(
                before,
                relation,
                strict,
                status,
                after,
                code,
                id=f"{rule}-{before}-{relation}-strict={strict}",
            )
        )

    for strict in (False, True):
        add("C4" if not strict else "C5", "P", "=", strict, 200, "P")
        for relation in NOT_MATCHING:
            add("C6", "P", relation, strict, 409, "P", 40900)
        for before in ("R", "J", "C", "T", "Rt"):
            add(
                "C7" if not strict else "C8",
                before,
                "=",
                strict,
                200 if not strict else 409,
                before,
                None if not strict else 40900,
            )
            for relation in NOT_MATCHING:
                add("C9", before, relation, strict, 409, before, 40900)
        add(
            "C10" if not strict else "C11",
            "P!",
            "=",
            strict,
            200 if not strict else 409,
            "T",
            None if not strict else 40900,
        )
        add(
            "C13" if not strict else "C14",
            "P!t",
            "=",
            strict,
            200 if not strict else 409,
            "Rt",
            None if not strict else 40900,
        )
        for relation in NOT_MATCHING:
            add("C12", "P!", relation, strict, 409, "T", 40900)
            add("C15", "P!t", relation, strict, 409, "Rt", 40900)
    return cases


@pytest.mark.parametrize(
    ("before", "relation", "strict", "status", "after", "code"), create_cases()
)
def test_create(api, uid, before, relation, strict, status, after, code):
    stored_key, request_key = KEY_RELATIONS[relation]
    setup(api, uid, before, create_key=stored_key, complete_key="ck")
    stored = api.get(f"/promises/{uid}").json()

    response = create(
        api, uid, key=request_key, strict=strict, timeout=1, tags={"x": "y"}, data="YQ=="
    )

    assert response.status_code == status, response.text
    body = response.json()
    if code is None:
        # Dedup answers the stored promise, not the request's param/timeout/tags.
        assert body["state"] == STATE_AFTER[after]
        assert body["timeout"] == stored["timeout"]
        assert body.get("tags") == stored.get("tags")
        assert body["param"] == stored["param"]
    else:
        assert body["error"]["code"] == code
        assert set(body) == {"error"}
    assert api.get(f"/promises/{uid}").json()["state"] == STATE_AFTER[after]


def test_c1_create_new(api, uid):
    response = create(
        api, uid, key="k1", timeout=123_456_789_000_000, tags={"a": "b"}, data="eyJ4IjoxfQ=="
    )
    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "PENDING"
    assert body["idempotencyKeyForCreate"] == "k1"
    assert body["value"] == {}
    assert body["param"] == {"data": "eyJ4IjoxfQ=="}
    assert body["tags"] == {"a": "b"}
    assert isinstance(body["createdOn"], int)
    assert "completedOn" not in body and "idempotencyKeyForComplete" not in body
    assert api.get(f"/promises/{uid}").json() == body


def test_c1_without_key_has_no_key(api, uid):
    body = create(api, uid).json()
    assert "idempotencyKeyForCreate" not in body


@pytest.mark.parametrize(
    ("tags", "after"), [(None, "REJECTED_TIMEDOUT"), ({"resonate:timeout": "true"}, "RESOLVED")]
)
def test_c2_create_in_the_past_answers_pending(api, uid, tags, after):
    response = create(api, uid, timeout=5, tags=tags)
    assert response.status_code == 201
    assert response.json()["state"] == "PENDING"
    read = api.get(f"/promises/{uid}").json()
    assert read["state"] == after
    assert read["completedOn"] == 5
    assert read["value"] == {}


def test_c3_no_timeout_means_zero(api, uid):
    response = api.post("/promises", json={"id": uid})
    assert response.status_code == 201
    assert response.json()["timeout"] == 0
    assert api.get(f"/promises/{uid}").json()["state"] == "REJECTED_TIMEDOUT"


def complete_cases() -> list[pytest.param]:
    cases = []

    def add(
        rule: str,
        before: str,
        relation: str,
        strict: bool,
        request: str,
        status: int,
        after: str,
        code: int | None = None,
    ) -> None:
        cases.append(
            pytest.param(
                before,
                relation,
                strict,
                request,
                status,
                after,
                code,
                id=f"{rule}-{before}-{relation}-strict={strict}-{request}",
            )
        )

    for request in ("R", "J", "C"):
        for strict in (False, True):
            add("K1", "∅", "--", strict, request, 404, "∅", 40400)
            add("K2", "P", "=", strict, request, 201, request)
            add("K2", "P", "--", strict, request, 201, request)
            for relation in ("=", "--"):
                add(
                    "K3" if not strict else "K4",
                    "P!",
                    relation,
                    strict,
                    request,
                    200 if not strict else 403,
                    "T",
                    None if not strict else 40304,
                )
                add("K5", "P!t", relation, strict, request, 403, "Rt", 40301)
            for before in ("R", "J", "C"):
                if not strict:
                    add("K6", before, "=", strict, request, 200, before)
                elif before == request:
                    add("K8", before, "=", strict, request, 200, before)
                else:
                    add("K9", before, "=", strict, request, 403, before, CODE[before])
                for relation in NOT_MATCHING:
                    add(
                        "K7" if not strict else "K10",
                        before,
                        relation,
                        strict,
                        request,
                        403,
                        before,
                        CODE[before],
                    )
            for relation in ("k-", "--"):
                add(
                    "K11" if not strict else "K12",
                    "T",
                    relation,
                    strict,
                    request,
                    200 if not strict else 403,
                    "T",
                    None if not strict else 40304,
                )
                add("K13", "Rt", relation, strict, request, 403, "Rt", 40301)
    return cases


@pytest.mark.parametrize(
    ("before", "relation", "strict", "target", "status", "after", "code"), complete_cases()
)
def test_complete(api, uid, before, relation, strict, target, status, after, code):
    stored_key, request_key = KEY_RELATIONS[relation]
    setup(api, uid, before, create_key="create-key", complete_key=stored_key)

    response = complete(api, uid, STATE_NAMES[target], key=request_key, strict=strict, data="eA==")

    assert response.status_code == status, response.text
    body = response.json()
    if code is not None:
        assert body["error"]["code"] == code
        assert set(body) == {"error"}
    else:
        assert body["state"] == STATE_AFTER[after]
    if after == "∅":
        assert api.get(f"/promises/{uid}").status_code == 404
        return
    stored = api.get(f"/promises/{uid}").json()
    assert stored["state"] == STATE_AFTER[after]
    if status == 201:  # K2
        assert stored["value"] == {"data": "eA=="}
        assert stored.get("idempotencyKeyForComplete") == request_key
        assert stored["idempotencyKeyForCreate"] == "create-key"
        assert isinstance(stored["completedOn"], int)
    if after in ("T", "Rt"):
        assert "idempotencyKeyForComplete" not in stored
        assert stored["completedOn"] == stored["timeout"]
        assert stored["value"] == {}


def test_k6_dedup_answers_stored_state_even_for_another_request(api, uid):
    setup(api, uid, "J", complete_key="k")
    response = complete(api, uid, "RESOLVED", key="k")
    assert response.status_code == 200
    assert response.json()["state"] == "REJECTED"


@pytest.mark.parametrize(
    ("before", "state"),
    [
        ("P", "PENDING"),
        ("R", "RESOLVED"),
        ("J", "REJECTED"),
        ("C", "REJECTED_CANCELED"),
        ("P!", "REJECTED_TIMEDOUT"),
        ("P!t", "RESOLVED"),
    ],
)
def test_read(api, uid, before, state):
    """G2-G5: reads time out overdue promises lazily and never return them PENDING."""
    setup(api, uid, before)
    response = api.get(f"/promises/{uid}")
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == state
    if before in ("P!", "P!t"):
        assert body["value"] == {}
        assert body["completedOn"] == body["timeout"]


def test_g1_read_missing(api, uid):
    response = api.get(f"/promises/{uid}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 40400


def test_g6_read_empty_id(api):
    response = api.get("/promises/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 40400


@pytest.mark.parametrize("path", ["{uid}/a/b", "{uid}%2Fa%2Fb"])
def test_ids_with_slashes(api, uid, path):
    assert create(api, f"{uid}/a/b").status_code == 201
    response = api.get("/promises/" + path.format(uid=uid))
    assert response.status_code == 200
    assert response.json()["id"] == f"{uid}/a/b"
    assert complete(api, f"{uid}/a/b", "RESOLVED").status_code == 201


def test_reserved_ids_under_promises_are_promises(api):
    """`GET /promises/task` reads the promise `task` (catch-all, http-api.md §1.2)."""
    response = api.get("/promises/task")
    assert response.status_code in (200, 404)
    if response.status_code == 404:
        assert response.json()["error"]["code"] == 40400
