// The few vaultd calls the action makes (see docs/api.md): JWT login, KV v2 read, revoke-self.

import { HttpClient } from '@actions/http-client';

const client = new HttpClient('vaultctl-action', [], {
  allowRetries: false,
  socketTimeout: 30000,
});

/** A refusal or failure from vaultd, carrying the server's own `errors` text. */
export class VaultdError extends Error {
  constructor(status, reasons, what) {
    super(`${what}: vaultd answered ${status}${reasons.length ? `: ${reasons.join('; ')}` : ''}`);
    this.status = status;
    this.reasons = reasons;
  }
}

async function call(method, url, { token, body, what }) {
  const headers = { Accept: 'application/json' };
  if (token) {
    headers['X-Vault-Token'] = token;
  }
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
  }
  let response;
  try {
    response = await client.request(method, url, body === undefined ? null : JSON.stringify(body), headers);
  } catch (error) {
    throw new Error(`${what}: cannot reach vaultd at ${url}: ${error.message}`);
  }
  const status = response.message.statusCode ?? 0;
  const text = await response.readBody();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (status < 200 || status > 299) {
    const reasons = Array.isArray(json?.errors) ? json.errors.map(String) : [];
    throw new VaultdError(status, reasons, what);
  }
  return json;
}

export function apiUrl(addr, apiPath) {
  return `${addr.replace(/\/+$/, '')}/v1/${apiPath}`;
}

/** `PUT auth/jwt/login {role, jwt}`: the `auth` block. */
export async function jwtLogin(addr, role, jwt) {
  const reply = await call('PUT', apiUrl(addr, 'auth/jwt/login'), {
    body: { role, jwt },
    what: `login with role ${role}`,
  });
  const auth = reply?.auth;
  if (!auth || typeof auth.client_token !== 'string' || !auth.client_token) {
    throw new Error(`login with role ${role}: vaultd's answer holds no token`);
  }
  return auth;
}

/** `GET secret/data/P`: the secret's `data.data` object. */
export async function readKv(addr, token, kvPath) {
  const reply = await call('GET', apiUrl(addr, kvPath), { token, what: `reading ${kvPath}` });
  const data = reply?.data?.data;
  if (!data || typeof data !== 'object') {
    throw new Error(`reading ${kvPath}: vaultd's answer holds no data`);
  }
  return data;
}

/** `POST auth/token/revoke-self`. */
export async function revokeSelf(addr, token) {
  await call('POST', apiUrl(addr, 'auth/token/revoke-self'), { token, what: 'revoking the token' });
}
