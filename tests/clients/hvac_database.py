"""hvac's secrets.database and sys lease calls against vaultd, in two steps so the Rust test can
log in as the minted user in between:

    hvac_database.py mint PG_PORT ADMIN_PASSWORD  -> configures, creates a role, mints; prints
                                                      the credential as JSON on the last line
    hvac_database.py end LEASE_ID                  -> read_lease, renew_lease, revoke_lease
"""

import json
import os
import sys

import hvac

client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
database = client.secrets.database

if sys.argv[1] == "mint":
    port, admin_password = sys.argv[2], sys.argv[3]
    database.configure(
        name="app",
        plugin_name="postgresql-database-plugin",
        allowed_roles=["deploy"],
        connection_url=f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{port}/app?sslmode=disable",
        username="vault_admin",
        password=admin_password,
    )
    connection = database.read_connection(name="app")["data"]
    assert connection["plugin_name"] == "postgresql-database-plugin", connection
    assert connection["connection_details"]["username"] == "vault_admin", connection
    assert admin_password not in json.dumps(connection), "the admin password was returned"
    assert "app" in database.list_connections()["data"]["keys"]

    try:
        database.configure(name="other", plugin_name="mysql-database-plugin")
        raise SystemExit("another plugin was accepted")
    except hvac.exceptions.InvalidRequest as e:
        assert "postgresql-database-plugin" in str(e), e

    database.create_role(
        name="deploy",
        db_name="app",
        creation_statements=[
            "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
            "GRANT SELECT ON widgets TO \"{{name}}\";",
        ],
        default_ttl="1h",
        max_ttl="24h",
    )
    role = database.read_role(name="deploy")["data"]
    assert role["db_name"] == "app" and role["default_ttl"] == 3600 and role["max_ttl"] == 86400, role
    assert "deploy" in database.list_roles()["data"]["keys"]

    creds = database.generate_credentials(name="deploy")
    assert creds["renewable"] is True and creds["lease_duration"] == 3600, {
        k: v for k, v in creds.items() if k != "data"
    }
    assert creds["lease_id"].startswith("database/creds/deploy/"), creds["lease_id"]
    print("minted")
    print(json.dumps({"lease_id": creds["lease_id"], **creds["data"]}))
elif sys.argv[1] == "end":
    lease_id = sys.argv[2]
    lease = client.sys.read_lease(lease_id=lease_id)["data"]
    assert lease["id"] == lease_id and lease["renewable"] is True and 0 < lease["ttl"] <= 3600, lease
    renewed = client.sys.renew_lease(lease_id=lease_id, increment=7200)
    assert renewed["lease_id"] == lease_id and 7100 < renewed["lease_duration"] <= 7200, renewed
    assert client.sys.list_leases(prefix="database/creds/deploy")["data"]["keys"] == [lease_id.rsplit("/", 1)[1]]
    client.sys.revoke_lease(lease_id=lease_id)
    try:
        client.sys.read_lease(lease_id=lease_id)
        raise SystemExit("a revoked lease still reads")
    except hvac.exceptions.InvalidRequest:
        pass
    client.sys.revoke_prefix(prefix="database/creds/deploy")
    print("all checks passed")
sys.stdout.flush()
