// The release archive that runs on this runner, named as scripts/release.sh names it.

export function targetTriple(platform = process.platform, arch = process.arch) {
  const cpu = { x64: 'x86_64', arm64: 'aarch64' }[arch];
  if (!cpu) {
    throw new Error(`no vaultctl release for the ${arch} processor (${platform})`);
  }
  switch (platform) {
    case 'linux':
      return `${cpu}-unknown-linux-gnu`; // statically linked
    case 'darwin':
      return `${cpu}-apple-darwin`;
    default:
      throw new Error(`no vaultctl release for ${platform} (${arch}); use a Linux or macOS runner`);
  }
}
