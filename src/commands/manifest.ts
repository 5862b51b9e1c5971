/**
 * `brics-env manifest`: generates the key pairs the environment makes itself (kept when present),
 * then writes `<deploy_dir>/combined.yaml`. Nothing is written when the deploy directory has errors.
 * A file command: it never calls podman.
 */
import { lstat, readFile } from "node:fs/promises";
import { join } from "node:path";
import { generatedKeyPairs } from "../plan/deployFiles.js";
import type { Environment } from "../plan/environments.js";
import { zenithClientImage } from "../plan/images.js";
import { buildManifest, renderManifest, type KeyMaterial, type KeyPair, type ManifestObject } from "../plan/manifest.js";
import { COMBINED_MANIFEST_FILE } from "../plan/names.js";
import { formatProblem, hasErrors } from "../plan/validate.js";
import { withDeployLock, writeFileAtomic } from "../effects/deployDir.js";
import { ensureKeyPair } from "../effects/sshKeys.js";
import { inspectDeployDir, type CheckedDeployDir } from "./check.js";
import { consoleOutput, displayPath, ReportedFailure, variables, type Output } from "./common.js";

export interface ManifestCommandOptions {
  readonly publish?: readonly string[];
  /**
   * The deploy directory as `check` left it, when the caller ran it (`up`): it is then neither
   * read nor validated again, and its problems are not printed twice.
   */
  readonly checked?: CheckedDeployDir;
  /** Give the in-pod Slurm container CAP_SYS_ADMIN (Slurm 24.11 and later need it). */
  readonly slurmSysAdmin?: boolean;
}

export interface WrittenManifest {
  readonly file: string;
  readonly objects: ManifestObject[];
}

const KEY_COMMENTS: Readonly<Record<string, string>> = {
  ssh_client_key: "JupyterHub-Slurm dev environment client key",
  ssh_host_key: "JupyterHub-Slurm dev environment Slurm host key",
};

function keyMaterial(env: Environment, files: Readonly<Record<string, string | undefined>>): KeyMaterial {
  const text = (name: string): string => {
    const t = files[name];
    // Validation has made sure every file the environment needs is there.
    if (t === undefined) throw new Error(`${name} is missing from the deploy directory`);
    return t;
  };
  const pair = (name: string): KeyPair => ({ private: text(name), public: text(`${name}.pub`) });
  return {
    clientKey: pair("ssh_client_key"),
    ...(env.slurm === "pod" ? { hostKey: pair("ssh_host_key") } : { knownHosts: text("ssh_known_hosts") }),
    ...(env.ingress === "zenith" ? { zenithKey: pair("ssh_zenith_client_key"), zenithConfig: text("zenith_client_config.yaml") } : {}),
  };
}

/** Whether `file` is a regular file holding exactly `text`, with permissions `mode`. */
async function holds(file: string, text: string, mode: number): Promise<boolean> {
  try {
    // Looked at before it is read: reading a FIFO put in its place would never return.
    const st = await lstat(file);
    if (!st.isFile() || (st.mode & 0o777) !== mode || st.size !== Buffer.byteLength(text)) return false;
    return (await readFile(file, "utf8")) === text;
  } catch {
    return false;
  }
}

export async function manifestCommand(env: Environment, dir: string, opts: ManifestCommandOptions = {}, out: Output = consoleOutput): Promise<WrittenManifest> {
  let checked = opts.checked;
  if (checked === undefined) {
    checked = await inspectDeployDir(env, dir);
    for (const p of checked.problems) out.say(formatProblem(p));
  }
  if (hasErrors(checked.problems)) throw new ReportedFailure(`not writing ${COMBINED_MANIFEST_FILE}: ${displayPath(dir)} has errors`);

  // Key generation and the write take turns with other runs on this directory: two `manifest`s
  // at once must not each make a key pair, and the one that waited must use the pair it finds.
  return withDeployLock(dir, () => writeManifest(env, dir, checked, opts, out), (line) => out.progress(line));
}

async function writeManifest(env: Environment, dir: string, checked: CheckedDeployDir, opts: ManifestCommandOptions, out: Output): Promise<WrittenManifest> {
  const files = { ...checked.files };
  for (const pair of generatedKeyPairs(env)) {
    // Validation has compared the halves of a pair that is there; only its mode may need fixing.
    const present = files[pair.private] !== undefined && files[pair.public] !== undefined;
    const result = await ensureKeyPair(join(dir, pair.private), join(dir, pair.public), KEY_COMMENTS[pair.private] ?? `brics-env ${env.name} key`, {
      halvesChecked: present,
    });
    if (!present) {
      // Made now, by this run or by one that held the lock before it.
      [files[pair.private], files[pair.public]] = await Promise.all([readFile(result.privateFile, "utf8"), readFile(result.publicFile, "utf8")]);
    }
    out.say(`${result.kind === "kept" ? "kept existing" : "generated"} key pair ${displayPath(result.privateFile)} (+ .pub)`);
  }

  const objects = buildManifest(env, {
    keys: keyMaterial(env, files),
    ...(checked.config.hubConnectUrl !== undefined ? { hubConnectUrl: checked.config.hubConnectUrl } : {}),
    ...(checked.hubConnectAddress !== undefined ? { hubConnectAddress: checked.hubConnectAddress } : {}),
    ...(opts.slurmSysAdmin === true && env.slurm === "pod" ? { grantSlurmSysAdmin: true } : {}),
    ...(opts.publish !== undefined && opts.publish.length > 0 ? { publish: opts.publish } : {}),
    zenithClientImage: zenithClientImage(variables()),
  });
  const target = join(dir, COMBINED_MANIFEST_FILE);
  const text = renderManifest(objects);
  // It holds private keys: 0600, like the key files themselves. Rewritten only when it would
  // change, so a re-run leaves the file (and its time stamp) alone and costs no disk sync.
  if (await holds(target, text, 0o600)) {
    out.say(`${displayPath(target)} is up to date`);
  } else {
    await writeFileAtomic(target, text, { overwrite: true, mode: 0o600 });
    out.say(`wrote ${displayPath(target)}`);
  }
  return { file: target, objects };
}
