// Bundles the action (action/src) into dist/main.js and dist/post.js with esbuild, plus
// dist/licenses.txt with the licences of the bundled packages. Deterministic: CI rebuilds from
// package-lock.json and compares byte for byte (scripts/check-action-bundle.sh).

import { build } from 'esbuild';
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const result = await build({
  entryPoints: { main: join(root, 'action/src/main.js'), post: join(root, 'action/src/post.js') },
  outdir: join(root, 'dist'),
  bundle: true,
  platform: 'node',
  // The runner runs node24; Node 20 must run the bundle too (the test suite uses it).
  target: 'node20',
  format: 'cjs',
  charset: 'utf8',
  legalComments: 'none',
  metafile: true,
  define: { __VAULTCTL_VERSION__: JSON.stringify(pkg.version) },
  absWorkingDir: root,
  logLevel: 'warning',
});

// Every package that ended up in a bundle, with its licence text.
const packages = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (match) {
    packages.add(match[1]);
  }
}
let notices = 'Licences of the packages bundled into dist/main.js and dist/post.js.\n';
for (const name of [...packages].sort()) {
  const dir = join(root, 'node_modules', name);
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const licenceFile = readdirSync(dir).sort().find((f) => /^licen[cs]e/i.test(f));
  notices += `\n== ${name} ${meta.version} (${meta.license})\n\n`;
  notices += licenceFile && existsSync(join(dir, licenceFile))
    ? readFileSync(join(dir, licenceFile), 'utf8').trim() + '\n'
    : `(no licence file shipped; package.json says ${meta.license})\n`;
}
writeFileSync(join(root, 'dist/licenses.txt'), notices);
