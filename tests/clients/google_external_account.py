"""Run by `vaultctl exec --identity-token … --gcp-audience …`: google-auth reads the
external_account file named by GOOGLE_APPLICATION_CREDENTIALS and exchanges the identity token
at its token_url itself. vaultctl holds no Google code."""

import json
import os

import google.auth.transport.requests
from google.auth import identity_pool

path = os.environ["GOOGLE_APPLICATION_CREDENTIALS"]
with open(path) as f:
    config = json.load(f)
assert config["type"] == "external_account", config
assert config["credential_source"]["file"] == os.environ["VAULTCTL_IDENTITY_TOKEN_FILE"]

# What google.auth.default() loads for this file (default() would then also look the project up
# at cloudresourcemanager.googleapis.com, which this offline test cannot reach).
credentials = identity_pool.Credentials.from_file(
    path, scopes=["https://www.googleapis.com/auth/cloud-platform"]
)
credentials.refresh(google.auth.transport.requests.Request())
print("access token:", credentials.token)
print("credentials file:", path)
