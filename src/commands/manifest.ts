/**
 * `brics-env manifest`: generates the key pairs the environment makes itself (kept when present),
 * then writes `<deploy_dir>/combined.yaml`. Nothing is written when the deploy directory has errors.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { generatedKeyPairs } from "../plan/deployFiles.js";
import type { Environment } from "../plan/environments.js";
import { zenithClientImage } from "../plan/images.js";
import { buildManifest, renderManifest, type KeyMaterial, type KeyPair } from "../plan/manifest.js";
import { COMBINED_MANIFEST_FILE, DEPLOY_CONFIGMAP_FILE } from "../plan/names.js";
import { formatProblem, hasErrors, readDeployConfigValues } from "../plan/validate.js";
import { writeFileAtomic } from "../effects/deployDir.js";
import { podmanInfo } from "../effects/podman.js";
import { needsAdaptation } from "../effects/podmanQuirks.js";
import { ensureKeyPair } from "../effects/sshKeys.js";
import { collectProblems } from "./check.js";
import { consoleOutput, displayPath, ReportedFailure, UsageError, variables, type Output } from "./common.js";

export interface ManifestCommandOptions {
  readonly publish?: readonly string[];
}

const KEY_COMMENTS: Readonly<Record<string, string>> = {
  ssh_client_key: "JupyterHub-Slurm dev environment client key",
  ssh_host_key: "JupyterHub-Slurm dev environment Slurm host key",
};

async function readPair(dir: string, name: string): Promise<KeyPair> {
  return { private: await readFile(join(dir, name), "utf8"), public: await readFile(join(dir, `${name}.pub`), "utf8") };
}

async function readKeyMaterial(env: Environment, dir: string): Promise<KeyMaterial> {
  const text = (name: string) => readFile(join(dir, name), "utf8");
  return {
    clientKey: await readPair(dir, "ssh_client_key"),
    ...(env.slurm === "pod" ? { hostKey: await readPair(dir, "ssh_host_key") } : { knownHosts: await text("ssh_known_hosts") }),
    ...(env.ingress === "zenith"
      ? { zenithKey: await readPair(dir, "ssh_zenith_client_key"), zenithConfig: await text("zenith_client_config.yaml") }
      : {}),
  };
}

/** Returns the path of the written manifest. */
export async function manifestCommand(env: Environment, dir: string, opts: ManifestCommandOptions = {}, out: Output = consoleOutput): Promise<string> {
  if (!existsSync(dir)) {
    throw new UsageError(`deploy directory ${displayPath(dir)} does not exist; create it with: brics-env init ${env.name} ${displayPath(dir)}`);
  }
  const problems = await collectProblems(env, dir);
  for (const p of problems) out.say(formatProblem(p));
  if (hasErrors(problems)) throw new ReportedFailure(`not writing ${COMBINED_MANIFEST_FILE}: ${displayPath(dir)} has errors`);

  for (const pair of generatedKeyPairs(env)) {
    const result = await ensureKeyPair(join(dir, pair.private), join(dir, pair.public), KEY_COMMENTS[pair.private] ?? `brics-env ${env.name} key`);
    out.say(`${result.kind === "kept" ? "kept existing" : "generated"} key pair ${displayPath(result.privateFile)} (+ .pub)`);
  }

  const config = readDeployConfigValues(await readFile(join(dir, DEPLOY_CONFIGMAP_FILE), "utf8")) ?? {};
  const objects = buildManifest(env, {
    keys: await readKeyMaterial(env, dir),
    ...(config["hubConnectUrl"] !== undefined ? { hubConnectUrl: config["hubConnectUrl"] } : {}),
    ...(opts.publish !== undefined && opts.publish.length > 0 ? { publish: opts.publish } : {}),
    zenithClientImage: zenithClientImage(variables()),
  });
  const target = join(dir, COMBINED_MANIFEST_FILE);
  // It holds private keys: 0600, like the key files themselves.
  await writeFileAtomic(target, renderManifest(objects), { overwrite: true, mode: 0o600 });
  out.say(`wrote ${displayPath(target)}`);
  const info = await podmanInfo().catch(() => undefined);
  if (info !== undefined && needsAdaptation(info.quirks)) {
    out.say(
      `note: podman ${info.version.raw} mounts Secrets and subPath volumes wrongly; start this with ` +
        `'brics-env up ${env.name} ${displayPath(dir)}', which plays an adapted copy, rather than podman kube play directly`,
    );
  }
  return target;
}
