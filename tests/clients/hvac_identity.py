"""hvac's secrets.identity OIDC-provider calls against vaultd: keys, roles, tokens, discovery,
keys, introspection. Prints the minted token's claims as JSON on the last line for the Rust
test to check (never the token itself)."""

import base64
import json
import os
import sys

import hvac

client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
identity = client.secrets.identity

identity.configure_tokens_backend(issuer=os.environ["VAULT_ADDR"])
assert identity.read_tokens_backend_configuration()["data"]["issuer"] == os.environ["VAULT_ADDR"]

identity.create_named_key(
    name="ci", algorithm="ES256", rotation_period="1h", verification_ttl="1h",
    allowed_client_ids=["*"],
)
key = identity.read_named_key(name="ci")["data"]
assert key["algorithm"] == "ES256", key
assert "private" not in json.dumps(key).lower(), key
assert "ci" in identity.list_named_keys()["data"]["keys"]

identity.create_or_update_role(
    name="deployer", key="ci", client_id="sts.amazonaws.com", ttl="10m",
    template=json.dumps({"team": "platform", "who": "{{role}}"}),
)
role = identity.read_role(name="deployer")["data"]
assert role["client_id"] == "sts.amazonaws.com" and role["ttl"] == 600, role
assert "deployer" in identity.list_roles()["data"]["keys"]

minted = identity.generate_signed_id_token(name="deployer")["data"]
assert minted["client_id"] == "sts.amazonaws.com" and 0 < minted["ttl"] <= 600, minted
token = minted["token"]

config = identity.read_well_known_configurations()
assert config["issuer"] == os.environ["VAULT_ADDR"] + "/v1/identity/oidc", config
assert config["jwks_uri"].endswith("/.well-known/keys"), config
keys = identity.read_active_public_keys()["keys"]
header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
assert header["alg"] == "ES256" and any(k["kid"] == header["kid"] for k in keys), (header, keys)
assert all("d" not in k for k in keys), "private key material published"

assert identity.introspect_signed_id_token(token=token, client_id="sts.amazonaws.com")["active"] is True
wrong = identity.introspect_signed_id_token(token=token, client_id="someone-else")
assert wrong["active"] is False, wrong
tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
assert identity.introspect_signed_id_token(token=tampered)["active"] is False

# hvac's rotate_named_key posts to key/:name instead of key/:name/rotate (it only updates the
# key there); the API path itself, through hvac's generic write:
identity.rotate_named_key(name="ci", verification_ttl="1h")
client.write("identity/oidc/key/ci/rotate", verification_ttl="1h")
after = identity.generate_signed_id_token(name="deployer")["data"]["token"]
new_kid = json.loads(base64.urlsafe_b64decode(after.split(".")[0] + "=="))["kid"]
assert new_kid != header["kid"]
assert identity.introspect_signed_id_token(token=token)["active"] is True, "old token still verifies"

try:
    identity.create_or_update_role(name="bad", key="ci", template=json.dumps({"aud": "x"}))
    raise SystemExit("a template setting aud was accepted")
except hvac.exceptions.InvalidRequest as e:
    assert "aud" in str(e), e

payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
print("all checks passed")
print(json.dumps(payload))
sys.stdout.flush()
