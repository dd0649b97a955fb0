"""A stock Vault client (hvac) against vaultd: token auth, KV v2 write/read/list/delete.

Usage: VAULT_ADDR=... VAULT_TOKEN=... python3 hvac_kv.py
Exits non-zero with a message on the first mismatch.
"""
import os
import sys

import hvac


def main() -> None:
    client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
    assert client.is_authenticated(), "hvac: token not accepted"
    assert not client.sys.is_sealed(), "hvac: server reports sealed"
    assert client.sys.is_initialized(), "hvac: server reports uninitialised"

    kv = client.secrets.kv.v2
    written = kv.create_or_update_secret(path="hvac/app", secret={"user": "svc", "pw": "hvac-pw"})
    assert written["data"]["version"] == 1, written
    kv.create_or_update_secret(path="hvac/app", secret={"user": "svc", "pw": "hvac-pw-2"}, cas=1)
    read = kv.read_secret_version(path="hvac/app", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"user": "svc", "pw": "hvac-pw-2"}, read
    old = kv.read_secret_version(path="hvac/app", version=1, raise_on_deleted_version=True)
    assert old["data"]["data"]["pw"] == "hvac-pw", old
    listed = kv.list_secrets(path="hvac")
    assert listed["data"]["keys"] == ["app"], listed
    meta = kv.read_secret_metadata(path="hvac/app")
    assert meta["data"]["current_version"] == 2, meta

    try:
        kv.create_or_update_secret(path="hvac/app", secret={"x": "y"}, cas=1)
        raise AssertionError("stale cas accepted")
    except hvac.exceptions.InvalidRequest:
        pass

    kv.delete_latest_version_of_secret(path="hvac/app")
    deleted = kv.read_secret_version(path="hvac/app", raise_on_deleted_version=False)
    assert deleted["data"]["metadata"]["deletion_time"] != "", deleted
    kv.undelete_secret_versions(path="hvac/app", versions=[2])
    kv.destroy_secret_versions(path="hvac/app", versions=[1])
    kv.delete_metadata_and_all_versions(path="hvac/app")
    try:
        kv.read_secret_version(path="hvac/app", raise_on_deleted_version=True)
        raise AssertionError("deleted secret still readable")
    except hvac.exceptions.InvalidPath:
        pass

    child = client.auth.token.create(policies=["nothing"], ttl="5m")
    child_token = child["auth"]["client_token"]
    other = hvac.Client(url=os.environ["VAULT_ADDR"], token=child_token)
    assert other.is_authenticated()
    try:
        other.secrets.kv.v2.read_secret_version(path="hvac/app", raise_on_deleted_version=True)
        raise AssertionError("policy-less token read a secret")
    except hvac.exceptions.Forbidden:
        pass
    looked = client.auth.token.lookup_accessor(child["auth"]["accessor"])
    assert "nothing" in looked["data"]["policies"], looked
    client.auth.token.revoke_accessor(child["auth"]["accessor"])
    assert not other.is_authenticated(), "revoked token still accepted"
    print("hvac: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"hvac check failed: {e}", file=sys.stderr)
        sys.exit(1)
