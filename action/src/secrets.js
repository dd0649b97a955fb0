// The optional `secrets` input, in hashicorp/vault-action's syntax:
//   secret/data/prod/api password | DB_PASSWORD ;
//   secret/prod/api api_key
// One request per line; `| NAME` names the variable and output (default: the key, upper-cased,
// other characters as `_`). `secret/X` and `secret/data/X` both read the KV v2 secret X.

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Variables the runner, the action or vaultctl itself relies on: never overwritten by a secret.
const RESERVED = /^(GITHUB_|RUNNER_|ACTIONS_|VAULTCTL_|VAULT_|INPUT_|STATE_|NODE_|LD_|DYLD_)|^(PATH|HOME|BASH_ENV|ENV|SHELL)$/i;

export function parseSecretRequests(text) {
  const requests = [];
  const seen = new Set();
  for (const raw of text.split(/[\n;]/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) {
      continue;
    }
    const [selector, alias, ...rest] = line.split('|').map((part) => part.trim());
    const words = selector.split(/\s+/).filter(Boolean);
    if (rest.length || words.length !== 2 || (alias !== undefined && !alias)) {
      throw new Error(`secrets: cannot read "${line}": write \`PATH KEY | NAME\` (| NAME is optional)`);
    }
    let [secretPath, key] = words;
    secretPath = secretPath.replace(/^\/+|\/+$/g, '');
    if (!secretPath.startsWith('secret/') || secretPath.length <= 'secret/'.length) {
      throw new Error(`secrets: ${secretPath} is not a KV path under secret/`);
    }
    const apiPath = secretPath.startsWith('secret/data/') ? secretPath : `secret/data/${secretPath.slice('secret/'.length)}`;
    const name = alias ?? key.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
    if (!NAME.test(name)) {
      throw new Error(`secrets: ${name} is not a valid variable name`);
    }
    if (RESERVED.test(name)) {
      throw new Error(`secrets: refusing to set ${name}, which the runner, the action or vaultctl relies on`);
    }
    if (seen.has(name)) {
      throw new Error(`secrets: ${name} is named twice`);
    }
    seen.add(name);
    requests.push({ apiPath, key, name });
  }
  return requests;
}

/** A KV value as the text a variable holds: strings as they are, anything else as JSON. */
export function valueText(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}
