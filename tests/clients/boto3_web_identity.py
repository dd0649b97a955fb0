"""Run by `vaultctl exec --identity-token … --aws-role-arn …`: boto3 finds the web-identity
token file and role through the environment vaultctl set, and exchanges the token itself
(AssumeRoleWithWebIdentity, at AWS_ENDPOINT_URL_STS). vaultctl holds no AWS code."""

import os
import stat

import boto3

token_file = os.environ["AWS_WEB_IDENTITY_TOKEN_FILE"]
mode = stat.S_IMODE(os.stat(token_file).st_mode)
assert mode == 0o600, oct(mode)
assert os.environ["VAULTCTL_IDENTITY_TOKEN_FILE"] == token_file
assert os.environ["AWS_ROLE_SESSION_NAME"].startswith("vaultctl-")
assert "VAULTCTL_TOKEN" not in os.environ, "the broker token is not passed on"

credentials = boto3.Session().get_credentials().get_frozen_credentials()
print("access key:", credentials.access_key)
print("token file:", token_file)
with open(token_file) as f:
    print("token:", f.read())  # vaultctl masks it in this output
