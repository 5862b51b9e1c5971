/** `brics-env status`: what podman holds for each environment and, where the hub runs, what it says. */
import { ENVIRONMENTS, type Environment } from "../plan/environments.js";
import { podmanObjectsOf } from "../plan/podmanObjects.js";
import { imageLabels, podInspect, podmanInfo, ps, secretLs, volumeLs } from "../effects/podman.js";
import { describeHub, hubStatus, type HubAnswer } from "../effects/hubApi.js";
import { imagesOf } from "../plan/images.js";
import { imageRef, podmanContainerName } from "../plan/names.js";
import { packagesFromLabels } from "../plan/packageLabels.js";
import { consoleOutput, type Output } from "./common.js";

export interface EnvStatus {
  readonly env: string;
  readonly pod: { name: string; state: string } | null;
  readonly containers: Array<{ name: string; state: string; status: string; image: string }>;
  readonly volumes: Array<{ name: string; exists: boolean }>;
  readonly secrets: Array<{ name: string; exists: boolean }>;
  /** The environment's images, and the Python packages (version, ref) `resources` built each from. */
  readonly images: Array<{ image: string; present: boolean; packages: Record<string, { version?: string; ref?: string }> }>;
  /** What the hub says (version, users, running servers) when its container runs; null otherwise. */
  readonly hub: HubAnswer | null;
}

export async function statusOf(env: Environment, allVolumes: readonly string[], allSecrets: readonly string[]): Promise<EnvStatus> {
  const objects = podmanObjectsOf(env);
  const pod = await podInspect(objects.pod);
  const containers = pod === undefined ? [] : (await ps(objects.pod)).map((c) => ({ name: c.name, state: c.state, status: c.status, image: c.image }));
  const hubRunning = containers.some((c) => c.name === podmanContainerName(env.name, "jupyterhub") && c.state === "running");
  const hub = hubRunning ? hubStatus(env) : Promise.resolve(null);
  const dataVolumes = objects.volumes.filter((v) => !objects.secrets.includes(v));
  const images = await Promise.all(
    imagesOf(env).map(async (name) => {
      const image = imageRef(name, env.stage);
      const labels = await imageLabels(image);
      return { image, present: labels !== undefined, packages: packagesFromLabels(labels) };
    }),
  );
  return {
    env: env.name,
    pod: pod === undefined ? null : { name: pod.name, state: pod.state },
    containers,
    volumes: dataVolumes.map((name) => ({ name, exists: allVolumes.includes(name) })),
    secrets: objects.secrets.map((name) => ({ name, exists: allSecrets.includes(name) })),
    images,
    hub: await hub,
  };
}

export async function statusCommand(env: Environment | undefined, opts: { json?: boolean }, out: Output = consoleOutput): Promise<void> {
  const [volumes, secrets, info] = await Promise.all([volumeLs(), secretLs(), podmanInfo()]);
  // Old podman cannot mount Secrets correctly, so brics-env mounts their keys as files instead.
  const secretsAsFiles = !info.quirks.secretVolumesWork;
  const envs = env === undefined ? ENVIRONMENTS : [env];
  const statuses: EnvStatus[] = [];
  for (const e of envs) statuses.push(await statusOf(e, volumes, secrets));
  if (opts.json) {
    out.say(JSON.stringify(env === undefined ? statuses : statuses[0], null, 2));
    return;
  }
  for (const s of statuses) {
    const anything = s.pod !== null || s.volumes.some((v) => v.exists) || s.secrets.some((x) => x.exists);
    if (env === undefined && !anything) {
      out.say(`${s.env}: not deployed`);
      continue;
    }
    out.say(`${s.env}: pod ${s.pod === null ? "absent" : `${s.pod.name} ${s.pod.state}`}`);
    for (const c of s.containers) out.say(`    container ${c.name}: ${c.status || c.state}`);
    if (s.hub !== null) out.say(`    hub: ${describeHub(s.hub)}`);
    for (const v of s.volumes) out.say(`    volume ${v.name}: ${v.exists ? "present" : "absent"}`);
    for (const i of s.images) {
      const packages = Object.entries(i.packages).map(([name, p]) => `${name} ${p.version ?? "?"} (${p.ref ?? "?"})`);
      out.say(`    image ${i.image}: ${i.present ? (packages.join(", ") || "present") : "absent"}`);
    }
    for (const x of s.secrets) out.say(`    Secret ${x.name}: ${x.exists ? "present" : secretsAsFiles && s.pod !== null ? "mounted from <deploy_dir>/.podman-play (podman < 4.4)" : "absent"}`);
  }
}
