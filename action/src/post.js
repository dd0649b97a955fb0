// The action's post step: revokes the token main obtained. Runs at the end of the job also when
// it failed or was cancelled (`post-if: always()` in action.yml), so the token never outlives
// the job.

import * as core from '@actions/core';
import { revokeSelf, VaultdError } from './vaultd.js';

async function run() {
  const token = core.getState('token');
  const addr = core.getState('addr');
  if (!token || !addr) {
    core.info('no vaultd token to revoke');
    return;
  }
  core.setSecret(token);
  try {
    await revokeSelf(addr, token);
    core.info('revoked the vaultd token');
  } catch (error) {
    if (error instanceof VaultdError && error.status === 403) {
      core.info('the vaultd token had already expired or been revoked');
      return;
    }
    core.warning(`could not revoke the vaultd token (${error.message}); it expires at the end of its TTL`);
  }
}

run().catch((error) => core.warning(error.message));
