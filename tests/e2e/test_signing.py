"""v1a (ed25519) signing across real processes: the tenant switches to v1a and rotates its key through
the API while run_dispatcher and qcluster deliver; every callback verifies, with PyNaCl, on the bytes
the receiver got, with the public keys the API gave, both keys during the rotation's overlap."""

import pytest

from tests.e2e.helpers import create_callbacks, unfinished
from tests.processes import wait_until
from tests.verifiers import v1a_signatures, verifies

pytestmark = pytest.mark.e2e


def test_v1a_callbacks_verify_before_and_during_a_rotation(api, receiver, service):
    assert api.patch("/api/v1/signing/", {"scheme": "v1a"}, format="json").status_code == 200
    old_public = api.get("/api/v1/signing/").json()["v1a"]["public_key"]
    service("dispatcher", ["run_dispatcher"])
    service("workers", ["qcluster"])

    before = create_callbacks(api, 10, receiver.url + "/before")
    wait_until(lambda: unfinished() == 0, timeout=60, message="the callbacks before the rotation")
    rotated = api.post("/api/v1/signing/rotate/", {"scheme": "v1a", "overlap_seconds": 3600}, format="json")
    new_public = rotated.json()["v1a"]["public_key"]
    during = create_callbacks(api, 10, receiver.url + "/during")
    wait_until(lambda: unfinished() == 0, timeout=60, message="the callbacks during the rotation")

    by_path = {"/before": [], "/during": []}
    for received in receiver.received:
        by_path[received.path].append(received)
    assert (len(by_path["/before"]), len(by_path["/during"])) == (len(before), len(during))
    for received in by_path["/before"]:
        [signature] = v1a_signatures(received)
        assert verifies(old_public, received, signature)
    for received in by_path["/during"]:
        new_signature, old_signature = v1a_signatures(received)
        assert verifies(new_public, received, new_signature) and not verifies(
            old_public, received, new_signature
        )
        assert verifies(old_public, received, old_signature) and not verifies(
            new_public, received, old_signature
        )
