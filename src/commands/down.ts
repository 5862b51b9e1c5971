/** `brics-env down`: removes the pod; with --force also the environment's volumes and Secrets. */
import { join } from "node:path";
import type { Environment } from "../plan/environments.js";
import { podmanObjectsOf } from "../plan/manifest.js";
import { kubeDown } from "../effects/podman.js";
import { consoleOutput, type Output } from "./common.js";

/** Where kube play keeps its version-adapted copy of the manifest (old podman only). */
export function playWorkDir(deployDir: string): string {
  return join(deployDir, ".podman-play");
}

export async function downCommand(env: Environment, deployDir: string, opts: { force?: boolean }, out: Output = consoleOutput): Promise<void> {
  const objects = podmanObjectsOf(env);
  const result = await kubeDown({
    force: opts.force === true,
    podName: objects.pod,
    volumes: objects.volumes,
    secrets: objects.secrets,
    workDir: playWorkDir(deployDir),
  });
  // podman stops the containers before removing them; that part is podman's, and said apart.
  out.say(result.podRemoved ? `removed pod ${objects.pod} (podman pod rm took ${(result.podRemoveMs / 1000).toFixed(1)} s)` : `pod ${objects.pod} was not there`);
  for (const v of result.removedVolumes) out.say(`removed volume ${v}`);
  for (const s of result.removedSecrets) out.say(`removed Secret ${s}`);
  const kept = result.keptVolumes.filter((v) => !objects.secrets.includes(v));
  if (kept.length > 0) {
    out.say(`kept volume${kept.length === 1 ? "" : "s"} ${kept.join(", ")} (state survives; 'brics-env down ${env.name} --force' removes ${kept.length === 1 ? "it" : "them"} and the Secrets)`);
  }
}
