/**
 * `brics-env up` on a pod that runs: applies what changed — the deploy ConfigMap, images, key
 * files, brics-env's own manifest, the hub's configuration files — by recreating (`podman create
 * --pod`) only the containers a change concerns, restarting the hub when only its configuration
 * files changed (making it anew where it is alone in the pod: plan/containerSpec.ts says why), and
 * starting one that stopped. Everything else keeps running: with Slurm in the
 * pod, a change that concerns only the hub never touches the Slurm container, whose slurmd runs
 * the users' jobs. Says what changed and why each container was recreated; changes nothing when
 * nothing changed. What a running pod cannot take (other published ports) is refused, as is
 * recreating the Slurm container while user servers run in it.
 */
import { mkdir } from "node:fs/promises";
import { containerAction, containerChanges, createCommand, describeReasons, desiredContainers, samePorts, type ChangeReason, type ContainerAction, type DesiredContainer } from "../plan/containerSpec.js";
import type { ContainerName, Environment } from "../plan/environments.js";
import type { ManifestObject, Pod, PublishedPort } from "../plan/manifest.js";
import { playWorkDir, podmanContainerName, podName, volumeName } from "../plan/names.js";
import { HOST_PATH_QUIRKS } from "../plan/podmanQuirks.js";
import { hubStatus } from "../effects/hubApi.js";
import {
  adaptToHostPaths,
  containerCreateAndStart,
  containerFacts,
  containerRemove,
  containerRestart,
  containerStart,
  imageId,
  localPodmanIsRootful,
  planHostPaths,
  podmanVersionInfo,
  volumeMountpoints,
  type PodState,
} from "../effects/podman.js";
import { ROOTFUL_PODMAN_NOTES } from "../plan/slurmCapabilities.js";
import { checkDeployDir, type CheckedDeployDir } from "./check.js";
import { displayPath, type Output } from "./common.js";
import { databaseStep, hubFilesDifference, upgradeHubDatabase } from "./hubPrepare.js";
import { manifestCommand } from "./manifest.js";
import { resourcesCommand, type StartedAhead } from "./resources.js";
import { awaitServing, requireImages, slurmContainerNeedsSysAdmin, type UpOptions } from "./up.js";


interface Plan {
  readonly desired: DesiredContainer;
  readonly reasons: readonly ChangeReason[];
  /** The hub's configuration files that changed (hub only). */
  readonly hubFiles: readonly string[];
  readonly action: ContainerAction;
}

/** The order containers are (re)made in: Slurm before the hub that submits to it. */
const ORDER: readonly ContainerName[] = ["slurm", "jupyterhub", "zenith-client"];
const STOP_TIMEOUT_S = 20;

function podOf(objects: readonly ManifestObject[]): Pod {
  const pod = objects.find((o): o is Pod => o.kind === "Pod");
  if (pod === undefined) throw new Error("the manifest has no Pod");
  return pod;
}

/** The ports the manifest's Pod publishes (on its containers, as hostPort). */
function publishedBy(pod: Pod): PublishedPort[] {
  return pod.spec.containers.flatMap((c) => (c.ports ?? []).filter((p) => p.hostPort !== undefined).map((p) => ({ hostIP: p.hostIP ?? "0.0.0.0", hostPort: p.hostPort!, containerPort: p.containerPort })));
}

function describePorts(ports: readonly PublishedPort[]): string {
  return ports.length === 0 ? "none" : ports.map((p) => `${p.hostIP}:${p.hostPort}:${p.containerPort}`).join(", ");
}

function explain(p: Plan): string {
  const why = [describeReasons(p.reasons), p.hubFiles.length > 0 ? `its configuration files changed (${p.hubFiles.join(", ")})` : ""].filter((x) => x !== "").join("; ");
  switch (p.action) {
    case "keep":
      return `${p.desired.container}: unchanged, keeps running`;
    case "start":
      return `${p.desired.container}: started again (${why})`;
    case "restart":
      return `${p.desired.container}: restarted (${why})`;
    case "recreate":
      return `${p.desired.container}: recreated (${why})`;
  }
}

export async function applyInPlace(
  env: Environment,
  dir: string,
  opts: UpOptions,
  existing: PodState,
  ctx: { readonly ahead: StartedAhead; readonly inspected: Promise<CheckedDeployDir> },
  out: Output,
): Promise<void> {
  const pod = podName(env.name);
  out.say(`pod ${pod} is ${existing.state === "Running" ? "running" : `${existing.state.toLowerCase()} (a container is not running)`}: applying what changed to it, in place`);
  const checked = await checkDeployDir(env, dir, out, ctx.inspected);
  const images = await resourcesCommand(env, { build: opts.build !== false }, out, ctx.ahead);
  if (opts.build === false) requireImages(env, images);
  if (localPodmanIsRootful()) for (const line of ROOTFUL_PODMAN_NOTES) out.progress(line);
  const slurmSysAdmin = await slurmContainerNeedsSysAdmin(env, images, out);
  const manifest = await manifestCommand(env, dir, { ...(opts.publish !== undefined ? { publish: opts.publish } : {}), checked, slurmSysAdmin }, out);
  const started = Date.now();
  const podSpec = podOf(manifest.objects);

  const wantedPorts = publishedBy(podSpec);
  if (!samePorts(wantedPorts, existing.ports)) {
    throw new Error(
      `the pod publishes ${describePorts(existing.ports)} and the manifest asks for ${describePorts(wantedPorts)}: a pod's ports are fixed when it is made, ` +
        `so this cannot be applied in place. Run up with the --publish entries the pod was made with, or make a new pod: ` +
        `'brics-env down ${env.name} ${displayPath(dir)}' then 'brics-env up ${env.name} ${displayPath(dir)}'` +
        (env.slurm === "pod" ? " (running user servers' jobs end with the pod's Slurm container)" : " (user servers' jobs keep running)"),
    );
  }

  // What runs, against what the manifest and the ConfigMap ask for.
  const [mountpoints, info] = await Promise.all([volumeMountpoints(), podmanVersionInfo()]);
  const adaptCtx = { quirks: HOST_PATH_QUIRKS, workDir: playWorkDir(dir), volumes: mountpoints, remote: info.remote };
  const planned = planHostPaths(manifest.objects, adaptCtx);
  const desired = desiredContainers(env, podSpec, podOf(planned.objects), checked.config);
  const [running, hubFiles] = await Promise.all([containerFacts(desired.map((d) => d.name)), hubFilesDifference(env, mountpoints)]);
  if (hubFiles === undefined && mountpoints.has(volumeName("jupyterhub_root", env.name))) {
    out.warn(`cannot compare the hub's configuration files on ${volumeName("jupyterhub_root", env.name)} from this machine (podman runs elsewhere): they are left as they are`);
  }
  const ids = new Map<string, string | undefined>();
  for (const d of desired) if (!ids.has(d.image)) ids.set(d.image, images.get(d.image)?.id ?? (await imageId(d.image)));
  const plans: Plan[] = desired
    .map((d) => {
      const reasons = containerChanges(d, running.find((r) => r.name === d.name), ids.get(d.image));
      const files = d.container === "jupyterhub" ? (hubFiles?.paths ?? []) : [];
      return { desired: d, reasons, hubFiles: files, action: containerAction(d.container, reasons, files, desired.length === 1) };
    })
    .sort((a, b) => ORDER.indexOf(a.desired.container) - ORDER.indexOf(b.desired.container));

  if (plans.every((p) => p.action === "keep")) {
    out.say(`${env.name} is running as configured: nothing to apply (deploy ConfigMap, images, keys and the hub's configuration files are as running)`);
    return;
  }

  // With Slurm in the pod, its container goes only when no user server's job runs in it.
  const slurm = plans.find((p) => p.desired.container === "slurm");
  const hub = plans.find((p) => p.desired.container === "jupyterhub")!;
  if (slurm !== undefined && (slurm.action === "recreate" || slurm.action === "restart") && running.some((r) => r.name === hub.desired.name && r.state === "running")) {
    const answer = await hubStatus(env);
    const n = "error" in answer ? 0 : answer.servers.running + answer.servers.pending;
    if ("error" in answer) out.warn(`could not ask the hub which user servers run (${answer.error})`);
    if (n > 0) {
      throw new Error(
        `${explain(slurm)}, but ${n} user server${n === 1 ? " runs" : "s run"} in it, and ${n === 1 ? "its job" : "their jobs"} would end. Nothing was changed. ` +
          `Stop them first (from the hub's admin page, or 'brics-env down ${env.name} --stop-servers' and up again)`,
      );
    }
  }

  // The hub's database, when the image that starts on it has another JupyterHub than wrote it.
  const step = hub.action === "keep" ? undefined : await databaseStep(env, mountpoints, images);
  if (step?.kind === "refuse") throw new Error(step.message);

  out.say(`applying changes to ${env.name}:`);
  for (const p of plans) out.say(`  ${explain(p)}`);
  if (hub.action !== "keep" && hubFiles !== undefined && hubFiles.paths.length > 0) await hubFiles.apply();
  if (step?.kind === "upgrade") {
    const hubRuns = running.some((r) => r.name === hub.desired.name && r.state === "running");
    const place = hubRuns ? { container: hub.desired.name } : { image: hub.desired.image, volume: volumeName("jupyterhub_root", env.name) };
    await upgradeHubDatabase(env, dir, step, place, () => containerRemove(hub.desired.name, STOP_TIMEOUT_S), out);
  }

  // The upgrade removed the old hub container: a new one is made whatever else changed.
  const actionFor = (p: Plan): ContainerAction => (p === hub && step?.kind === "upgrade" ? "recreate" : p.action);
  if (plans.some((p) => actionFor(p) === "recreate")) await adaptToHostPaths(manifest.objects, adaptCtx);
  for (const p of plans) {
    const name = podmanContainerName(env.name, p.desired.container);
    const action = actionFor(p);
    if (action === "start") {
      await containerStart(name);
    } else if (action === "restart") {
      await containerRestart(name, STOP_TIMEOUT_S);
    } else if (action === "recreate") {
      await containerRemove(name, STOP_TIMEOUT_S);
      for (const b of p.desired.binds) if (b.createDirectory) await mkdir(b.source, { recursive: true });
      const { args, env: values } = createCommand(env, p.desired);
      await containerCreateAndStart(args, values);
    }
  }
  out.say(`applied in ${((Date.now() - started) / 1000).toFixed(1)} s; ${plans.filter((p) => p.action === "keep").map((p) => p.desired.container).join(", ") || "no container"} kept running`);
  await awaitServing(env, dir, checked.config, opts, Date.now(), out);
}
