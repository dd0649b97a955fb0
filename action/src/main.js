// The action's main step: install vaultctl, log in with the job's OIDC ID token, export
// VAULTCTL_ADDR / VAULTCTL_TOKEN, and optionally export the `secrets` it names. Every secret
// value (the ID token, the vaultd token, each secret) is registered as a mask before anything
// else is done with it; the post step revokes the token whatever happens after the login.

import * as core from '@actions/core';
import { install } from './install.js';
import { parseSecretRequests, valueText } from './secrets.js';
import { jwtLogin, readKv, VaultdError } from './vaultd.js';

// The release this bundle belongs to (package.json's version, set at build time).
const ACTION_VERSION = __VAULTCTL_VERSION__;

function defaultDownloadUrl(version) {
  const server = (process.env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '');
  const repository = process.env.GITHUB_ACTION_REPOSITORY || process.env.GITHUB_REPOSITORY;
  if (!repository) {
    throw new Error('cannot tell where the releases are: set the download-url input');
  }
  return `${server}/${repository}/releases/download/v${version}`;
}

/** Masks `value` and each line of it (the runner matches masks line by line). */
function mask(value) {
  core.setSecret(value);
  for (const line of value.split(/\r?\n/)) {
    if (line.trim() && line !== value) {
      core.setSecret(line);
    }
  }
}

async function run() {
  const version = (core.getInput('version') || ACTION_VERSION).replace(/^v/, '');
  if (!/^[0-9A-Za-z.+-]+$/.test(version)) {
    throw new Error(`version: not a version: ${version}`);
  }
  const role = core.getInput('role');
  const audience = core.getInput('audience');
  const addr = (core.getInput('url') || process.env.VAULTCTL_ADDR || '').replace(/\/+$/, '');
  const secretsText = core.getInput('secrets');
  // Every input is checked before anything is installed or requested.
  const requests = parseSecretRequests(secretsText);
  if (role) {
    if (!addr) {
      throw new Error('no vaultd address: set the url input or VAULTCTL_ADDR');
    }
    if (!audience) {
      throw new Error("audience: required with role (one of the role's audiences)");
    }
  } else if (requests.length) {
    throw new Error('secrets: needs a role to log in with');
  }

  const started = Date.now();
  const dir = await install(version, core.getInput('download-url') || defaultDownloadUrl(version));
  core.addPath(dir);
  core.setOutput('version', version);
  core.info(`vaultctl ${version} ready in ${Date.now() - started} ms`);
  if (!role) {
    core.info('no role given: vaultctl installed, no login');
    return;
  }

  let jwt;
  try {
    jwt = await core.getIDToken(audience); // getIDToken masks it
  } catch (error) {
    throw new Error(
      `cannot get the job's OIDC ID token (${error.message}): give the job \`permissions: id-token: write\``,
    );
  }
  let auth;
  try {
    auth = await jwtLogin(addr, role, jwt);
  } catch (error) {
    if (error instanceof VaultdError && error.status === 400) {
      throw new Error(
        `vaultd refused the login with role ${role}: ${error.reasons.join('; ') || 'no reason given'} ` +
          '(see "When the login is refused" in docs/github-actions.md; `vaultctl policy test --jwt` explains each check)',
      );
    }
    throw error;
  }
  const token = auth.client_token;
  core.setSecret(token);
  // From here on the post step revokes the token, whatever fails next.
  core.saveState('addr', addr);
  core.saveState('token', token);
  const policies = (auth.policies || []).join(',');
  core.info(
    `logged in with role ${role}: accessor ${auth.accessor}, policies ${policies}, ttl ${auth.lease_duration}s`,
  );
  core.exportVariable('VAULTCTL_ADDR', addr);
  core.exportVariable('VAULTCTL_TOKEN', token);
  core.setOutput('accessor', auth.accessor);
  core.setOutput('policies', policies);
  core.setOutput('lease-duration', String(auth.lease_duration));

  const byPath = new Map();
  for (const request of requests) {
    if (!byPath.has(request.apiPath)) {
      byPath.set(request.apiPath, await readKv(addr, token, request.apiPath));
    }
    const data = byPath.get(request.apiPath);
    if (!Object.prototype.hasOwnProperty.call(data, request.key)) {
      throw new Error(`secrets: ${request.apiPath} has no key ${request.key}`);
    }
    const value = valueText(data[request.key]);
    mask(value);
    if (value.length < 4) {
      core.warning(`${request.name} is shorter than 4 characters: the runner may not mask it reliably`);
    }
    core.exportVariable(request.name, value);
    core.setOutput(request.name, value);
    core.info(`exported ${request.name} (from ${request.apiPath})`);
  }
}

run().catch((error) => core.setFailed(error.message));
