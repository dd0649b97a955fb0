// Installs vaultctl from a release archive into the runner's tool cache, after checking the
// archive against the release's SHA256SUMS.

import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import * as tc from '@actions/tool-cache';
import { targetTriple } from './platform.js';

/** The expected digest of `archive` in a SHA256SUMS text, or throws. */
export function expectedDigest(sums, archive) {
  for (const line of sums.split('\n')) {
    const match = /^([0-9a-f]{64}) [ *]?(\S+)$/i.exec(line.trim());
    if (match && match[2] === archive) {
      return match[1].toLowerCase();
    }
  }
  throw new Error(`SHA256SUMS has no line for ${archive}`);
}

function sha256File(file) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('error', reject)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Returns the folder holding the vaultctl binary, from the tool cache or freshly installed. */
export async function install(version, baseUrl) {
  const target = targetTriple();
  const cached = tc.find('vaultctl', version, process.arch);
  if (cached) {
    core.info(`vaultctl ${version} is in the tool cache`);
    return cached;
  }
  const archive = `vaultctl-${version}-${target}.tar.gz`;
  const base = baseUrl.replace(/\/+$/, '');
  const sumsFile = await tc.downloadTool(`${base}/SHA256SUMS`);
  const expected = expectedDigest(readFileSync(sumsFile, 'utf8'), archive);
  core.info(`downloading ${base}/${archive}`);
  const archiveFile = await tc.downloadTool(`${base}/${archive}`);
  const actual = await sha256File(archiveFile);
  if (actual !== expected) {
    throw new Error(
      `checksum mismatch for ${archive}: SHA256SUMS says ${expected}, the download is ${actual}; nothing was installed`,
    );
  }
  const unpacked = await tc.extractTar(archiveFile);
  const folder = path.join(unpacked, `vaultctl-${version}-${target}`);
  const dir = await tc.cacheDir(folder, 'vaultctl', version, process.arch);
  core.info(`installed vaultctl ${version} (${target}, sha256 ${actual})`);
  return dir;
}
