"""tests/server/test_locks.py over gRPC, on both stores: the HTTP suite's own tests, their
``live.client`` on the gRPC transport (tests/grpc/transport.py; ``live`` in
tests/grpc/conftest.py). The few that cannot run over gRPC are skipped below, each with its
reason."""

from __future__ import annotations

from tests.server.test_locks import *  # noqa: F403

NOT_A_STRING = "a string field cannot carry a JSON number or list"
NOT_AN_INT64 = "an int64 field cannot carry a JSON float, boolean, string or 2**63"
NOT_OVER_GRPC = {
    "test_search_locks_rejects_bad_parameters[-params2]": "limit is an int32: 'ten' cannot be sent",
    "test_search_locks_rejects_bad_parameters[-params4]": "an empty cursor is an absent one",
    "test_invalid_bodies_are_400_naming_the_field[-body4-]": NOT_A_STRING,
    "test_invalid_bodies_are_400_naming_the_field[-body8-]": NOT_AN_INT64,
    "test_invalid_bodies_are_400_naming_the_field[-body9-]": NOT_AN_INT64,
    "test_invalid_bodies_are_400_naming_the_field[-body10-]": NOT_AN_INT64,
    "test_invalid_bodies_are_400_naming_the_field[-body11-]": NOT_AN_INT64,
    "test_invalid_bodies_are_400_naming_the_field[-body16-]": NOT_A_STRING,
    "test_bodies_that_are_not_json_objects_are_400": "HTTP framing: a body that is no JSON object",
    "test_methods_on_lock_routes[-PUT-]": "405 and Allow are the HTTP router's",
    "test_methods_on_lock_routes[-POST-]": "405 and Allow are the HTTP router's",
    "test_methods_on_lock_routes[-DELETE-]": "405 and Allow are the HTTP router's",
    "test_lock_metrics": 'counts api_requests_total{protocol="http"}',
    "test_mutual_exclusion_under_contention": "real server processes over HTTP",
    "test_a_killed_holder_process_frees_its_lock_after_its_ttl": "real server processes over HTTP",
}
