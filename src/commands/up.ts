/**
 * `brics-env up`: everything from an empty deploy directory to a hub answering on its health
 * endpoint — init (when there is no ConfigMap), check, resources, manifest, the hub's
 * configuration files brought in line with the package and its database upgraded when the image's
 * JupyterHub changed (after a backup), kube play, wait. On a running pod it applies what changed
 * in place instead (upInPlace.ts). Volumes are never recreated. The deploy directory is read and
 * validated once (by check) and handed on.
 */
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { containersOf, type Environment } from "../plan/environments.js";
import { imagesOf } from "../plan/images.js";
import { DEPLOY_CONFIGMAP_FILE, imageRef, playWorkDir, podmanContainerName, podName, volumeName } from "../plan/names.js";
import { pathInVolume, SLURM_READY_FILE } from "../plan/volumes.js";
import type { ConfigValues } from "../plan/validate.js";
import { CommandError } from "../effects/exec.js";
import { healthUrl, waitForHealth } from "../effects/hubHealth.js";
import {
  containerHealth,
  containerLogs,
  execInContainer,
  kubePlay,
  localPodmanIsRootful,
  podInspect,
  podmanVersionInfo,
  podRm,
  secretLs,
  slurmVersionOfImage,
  volumeMountpoints,
  type ContainerHealth,
} from "../effects/podman.js";
import { playsSecrets } from "../plan/podmanQuirks.js";
import { ROOTFUL_PODMAN_NOTES, SLURM_VERSION_LABEL, slurmNeedsSysAdmin, sysAdminReason } from "../plan/slurmCapabilities.js";
import { consoleOutput, displayPath, ReportedFailure, type Output } from "./common.js";
import { databaseStep, hubFilesDifference, recordPlayedImage, refreshHubFiles, upgradeHubDatabase } from "./hubPrepare.js";
import { initCommand } from "./init.js";
import { resourcesCommand, startAhead, type ImagesAfter } from "./resources.js";
import { watchZenithClient } from "./zenithClientWatch.js";

export interface UpOptions {
  readonly timeoutSeconds: number;
  readonly publish?: readonly string[];
  /** Skip image builds (when the images are known to be current). */
  readonly build?: boolean;
}

/** Pod states in which `up` applies changes to the running pod instead of playing a new one. */
const IN_PLACE_STATES = new Set(["Running", "Degraded"]);

/**
 * The Slurm container is probed from inside, in a loop that lasts up to this long per `podman
 * exec`: one process start per few seconds instead of one per probe, and readiness seen within
 * a tenth of a second.
 */
const SLURM_PROBE_ROUND_S = 3;
/** After a round that could not run (the container not started yet, or restarting). */
const SLURM_PROBE_RETRY_MS = 200;

/** Where a browser reaches the proxy, from the published ports (none behind Zenith). */
async function proxyAddress(env: Environment, publish: readonly string[] | undefined) {
  // Loaded by then (manifest needs it): not part of the code up loads first.
  const { publishedProxyPort } = await import("../plan/manifest.js");
  const proxy = publishedProxyPort(env, publish);
  if (proxy === undefined) return undefined;
  const host = proxy.hostIP === "0.0.0.0" || proxy.hostIP === "::" ? "127.0.0.1" : proxy.hostIP;
  return { host: host.includes(":") ? `[${host}]` : host, port: proxy.hostPort };
}

function joinBase(baseUrl: string | undefined, path: string): string {
  const base = `/${(baseUrl ?? "/").replace(/^\/+|\/+$/g, "")}/`.replace(/^\/\/$/, "/");
  return `${base}${path}`;
}

/** What `up` needs only once podman's lookup runs: it loads the YAML parser, so it is loaded after. */
async function loadLater() {
  const [check, manifest] = await Promise.all([import("./check.js"), import("./manifest.js")]);
  return { checkDeployDir: check.checkDeployDir, inspectDeployDir: check.inspectDeployDir, manifestCommand: manifest.manifestCommand };
}

export async function upCommand(env: Environment, dir: string, opts: UpOptions, out: Output = consoleOutput): Promise<void> {
  const pod = podName(env.name);
  // What podman holds is asked first, in as few processes as it can be (each start costs): the
  // pod and what resources decides on (one `podman inspect`), its version (it decides how the
  // manifest is played; mostly remembered) and, where the play creates Secrets, the Secrets an
  // earlier play left (discarded when the pod turns out to be running). The build contexts are
  // readied meanwhile (files and git processes).
  const ahead = startAhead(env, { build: opts.build !== false });
  const resources = ahead.lookup;
  const secrets = podmanVersionInfo().then((info) => (playsSecrets(info.quirks) ? secretLs() : undefined));
  secrets.catch(() => undefined);
  // Meanwhile the code that reads YAML loads (the parser is the largest part of up's code), and
  // reads the deploy directory when there is one to read.
  const later = loadLater();
  const configMapThere = existsSync(join(dir, DEPLOY_CONFIGMAP_FILE));
  const inspected = configMapThere ? later.then((l) => l.inspectDeployDir(env, dir)) : undefined;
  inspected?.catch(() => undefined);
  const { checkDeployDir, manifestCommand } = await later;
  const existing = (await resources).pod;
  if (existing !== undefined && IN_PLACE_STATES.has(existing.state) && !configMapThere) {
    // Not init: a new ConfigMap (a new password) would replace the running pod's.
    throw new Error(`pod ${pod} is running, but ${displayPath(dir)} has no ${DEPLOY_CONFIGMAP_FILE}: is it the environment's deploy directory? Name the one it was brought up with`);
  }
  if (existing !== undefined && IN_PLACE_STATES.has(existing.state)) {
    const { applyInPlace } = await import("./upInPlace.js");
    await applyInPlace(env, dir, opts, existing, { ahead, inspected: inspected! }, out);
    return;
  }
  if (!configMapThere) {
    out.say(`no ${DEPLOY_CONFIGMAP_FILE} in ${displayPath(dir)}: running init first`);
    await initCommand(env, dir, out);
  }
  const checked = await checkDeployDir(env, dir, out, inspected);
  // How the hub's configuration files on its volume differ from the package is read while
  // resources and manifest run (nothing else writes there); they are changed after.
  const hubFiles = resources.then((looked) => (looked.volumes.has(volumeName("jupyterhub_root", env.name)) ? hubFilesDifference(env, looked.volumes) : undefined));
  hubFiles.catch(() => undefined);
  const images = await resourcesCommand(env, { build: opts.build !== false }, out, ahead);
  if (opts.build === false) requireImages(env, images);
  if (localPodmanIsRootful()) for (const line of ROOTFUL_PODMAN_NOTES) out.warn(line);
  const slurmSysAdmin = await slurmContainerNeedsSysAdmin(env, images, out);
  const manifest = await manifestCommand(env, dir, { ...(opts.publish !== undefined ? { publish: opts.publish } : {}), checked, slurmSysAdmin }, out);

  // The volumes as looked up at the start still hold unless resources had to create one.
  const looked = await resources;
  const stale = await secrets;
  const known = looked.volumesPresent.every((p) => p) ? { volumes: looked.volumes, ...(stale !== undefined ? { secrets: stale } : {}) } : undefined;
  if (looked.volumes.has(volumeName("jupyterhub_root", env.name))) {
    // The hub's volume was there before: its configuration may be older than this package, its
    // database older than the image's JupyterHub.
    await refreshHubFiles(env, looked.volumes, out, hubFiles);
    const step = await databaseStep(env, looked.volumes, images);
    if (step.kind === "refuse") throw new Error(step.message);
    if (step.kind === "upgrade") {
      const image = imageRef("brics_jupyterhub", env.stage);
      await upgradeHubDatabase(env, dir, step, { image, volume: volumeName("jupyterhub_root", env.name) }, async () => undefined, out);
    }
  }
  if (existing !== undefined) {
    // A pod that exists but is not running (exited, created) would block kube play; its volumes
    // are separate and stay.
    out.say(`pod ${pod} exists in state ${existing.state}; replacing it (volumes are kept)`);
    await podRm(pod);
  }
  const configMap = join(dir, DEPLOY_CONFIGMAP_FILE);
  const playStarted = Date.now();
  const played = await kubePlay(manifest.file, {
    objects: manifest.objects,
    ...(known !== undefined ? { known } : {}),
    workDir: playWorkDir(dir),
    configmaps: [configMap],
    onLine: (l) => out.progress(`  ${l}`),
  }).catch((err: unknown) => {
    // Runtime set-up failures look alike on every host that needs the containers.conf fix.
    if (err instanceof CommandError && /rlimit|cgroup|crun|OCI permission denied/i.test(err.stderrTail)) {
      throw new Error(`${err.message}\npodman cannot start containers here; 'brics-env doctor' explains the fix (the podman settings in podman/50-brics-env.conf)`);
    }
    throw err;
  });
  const playedAt = Date.now();
  for (const n of played.notes) out.progress(n);
  out.say(`started pod ${pod}`);
  const readyFile = await slurmReadyFile(env, looked.volumes, playStarted);
  const hubAnswered = await awaitServing(env, dir, checked.config, opts, playedAt, out, readyFile);
  // Only a hub seen answering has recorded its version (behind Zenith it may not have started
  // yet). A failure here only costs the next up one question to the image.
  if (hubAnswered) await recordPlayedImage(env, known?.volumes ?? (await volumeMountpoints()), images).catch(() => undefined);
}

/** A file that says Slurm is ready when it was written after `since` (ms since the epoch). */
export interface ReadyFile {
  readonly path: string;
  readonly since: number;
}

/**
 * Where this host sees the file the pod's Slurm container writes once ready (plan/volumes.ts),
 * counting from `since`; undefined where it cannot look: no Slurm in the pod, a remote podman
 * (the volume is on its machine), the volume unknown.
 */
async function slurmReadyFile(env: Environment, volumes: ReadonlyMap<string, string>, since: number): Promise<ReadyFile | undefined> {
  if (env.slurm !== "pod") return undefined;
  const mountpoint = volumes.get(volumeName("slurm_root", env.name));
  if (mountpoint === undefined || (await podmanVersionInfo()).remote) return undefined;
  return { path: join(mountpoint, pathInVolume("slurm_root", SLURM_READY_FILE)), since };
}

/**
 * After a play (or a change applied in place at `since`): waits until the hub answers its health
 * endpoint and, with Slurm in the pod, the Slurm container is ready; behind Zenith, watches the
 * client instead. Says where to log in. Whether the hub was seen answering.
 */
export async function awaitServing(env: Environment, dir: string, config: ConfigValues, opts: UpOptions, since: number, out: Output, readyFile?: ReadyFile): Promise<boolean> {
  const pod = podName(env.name);
  const configMap = join(dir, DEPLOY_CONFIGMAP_FILE);
  const playedAt = since;
  const address = await proxyAddress(env, opts.publish);
  const timeoutMs = opts.timeoutSeconds * 1000;
  const containers = containersOf(env).map((c) => podmanContainerName(env.name, c));
  // The Slurm container starts alongside the hub: probe it meanwhile, so a ready Slurm costs no
  // time once the hub answers. It shares the deadline, with at least 10 s left after the hub.
  const slurmWait = new SlurmWait(Date.now() + timeoutMs);
  const slurmReady = env.slurm === "pod" ? waitForSlurm(podmanContainerName(env.name, "slurm"), slurmWait, out, readyFile) : Promise.resolve(true);
  // Containers are looked at once Slurm is ready or the hub answers, whichever comes first (by
  // then a container in a restart loop shows), so mostly while the other is still starting.
  let health: Promise<ContainerHealth[]> | undefined;
  const lookAtContainers = () => {
    health ??= containerHealth(containers);
    health.catch(() => undefined);
  };
  if (env.slurm === "pod") void slurmReady.then(lookAtContainers);

  if (address === undefined) {
    await requireSlurmReady(env, slurmReady, out);
    // Nothing here says the hub is up (its traffic comes through the tunnel): watch the Zenith
    // client long enough to see its handshake fail, and the other containers for a few seconds.
    const client = podmanContainerName(env.name, "zenith-client");
    await watchZenithClient(client, out, { since: playedAt });
    await reportUnhealthyContainers(await watchContainers(containers.filter((c) => c !== client), playedAt + ZENITH_WATCH_MS), out);
    out.say(`${env.name} receives user traffic through the Zenith tunnel; not waiting for the hub here.`);
    out.say(`watch it with: brics-env status ${env.name}; brics-env logs ${env.name}`);
    return false;
  }
  const url = healthUrl(config.baseUrl ?? "/", address.port, address.host);
  out.progress(`waiting up to ${opts.timeoutSeconds} s for ${url} ...`);
  const result = await waitForHealth(url, {
    timeoutMs,
    onProgress: (waited, last) => out.progress(`  still waiting (${Math.round(waited / 1000)} s, last: ${last})`),
    abortCheck: async () => ((await podInspect(pod)) === undefined ? `pod ${pod} disappeared` : undefined),
  });
  if (!result.ok) {
    slurmWait.stop();
    out.say(`the hub did not answer ${url} within ${opts.timeoutSeconds} s (${result.aborted ?? `last: ${result.last}`})`);
    const state = await podInspect(pod);
    for (const c of containers) {
      const cs = state?.containers.find((x) => x.name === c);
      out.say(`--- last log lines of ${c} (${cs?.state ?? "absent"}) ---`);
      out.say((await containerLogs(c, 30).catch((e: Error) => e.message)).trimEnd());
    }
    out.say(`the pod is left as it is for inspection; 'brics-env down ${env.name}' removes it`);
    throw new ReportedFailure("the hub did not become healthy");
  }
  out.say(`hub healthy after ${(result.waitedMs / 1000).toFixed(1)} s`);
  lookAtContainers();
  slurmWait.hurry(Date.now() + 10_000);
  await requireSlurmReady(env, slurmReady, out);
  await reportUnhealthyContainers(await health!, out);
  out.say(`log in at http://${address.host}:${address.port}${joinBase(config.baseUrl, "hub/login")}`);
  if (env.auth === "dummy") {
    const firstUser = (config.devUsers ?? "").trim().split(/\s+/)[0] ?? "";
    const user = firstUser.split(".")[0] ?? firstUser;
    out.say(`  user: ${user || "(first of devUsers)"} (the dummy authenticator logs everyone in as the first of devUsers)`);
    out.say(`  password: the value of dummyAuthPassword in ${displayPath(configMap)}`);
  } else {
    out.say(`  requests must carry a valid identity token (X-Auth-Id-Token), e.g. through a Zenith tunnel`);
  }
  return true;
}

/** With --no-build: the environment's images must be there already. */
export function requireImages(env: Environment, images: ImagesAfter): void {
  const missing = imagesOf(env)
    .map((image) => imageRef(image, env.stage))
    .find((ref) => !images.has(ref));
  if (missing !== undefined) throw new Error(`image ${missing} does not exist; build it with: brics-env resources ${env.name}`);
}

/**
 * In-pod Slurm: whether the Slurm image's Slurm needs CAP_SYS_ADMIN, from the version `resources`
 * recorded on the image, or (an image built otherwise) from the image's own slurmd. Says so when it does.
 */
export async function slurmContainerNeedsSysAdmin(env: Environment, images: ImagesAfter, out: Output): Promise<boolean> {
  if (env.slurm !== "pod") return false;
  const image = imageRef("brics_slurm", env.stage);
  const version = images.get(image)?.labels[SLURM_VERSION_LABEL] ?? (await slurmVersionOfImage(image));
  if (version === undefined) {
    out.warn(`could not tell the Slurm version of ${image}: not granting CAP_SYS_ADMIN (Slurm 24.11 and later need it for the hub's jobs)`);
    return false;
  }
  if (!slurmNeedsSysAdmin(version)) return false;
  out.say(sysAdminReason(version));
  return true;
}

/**
 * A healthy hub does not mean a healthy pod: a Slurm container in a restart loop only shows when
 * a user spawns. Name any container that is not running or has restarted since the play.
 */
async function reportUnhealthyContainers(states: readonly ContainerHealth[], out: Output): Promise<void> {
  for (const c of states) {
    if (c.status === "running" && c.restarts === 0) continue;
    out.warn(`container ${c.name} is ${c.status}${c.restarts > 0 ? ` and has restarted ${c.restarts} time${c.restarts === 1 ? "" : "s"}` : ""}; its last log lines:`);
    const logs = await containerLogs(c.name, 15).catch((e: Error) => e.message);
    out.warn(logs.trimEnd().split("\n").join("\n    "));
  }
}

/** How long after the play a Zenith environment's containers are watched (nothing else says they are well). */
const ZENITH_WATCH_MS = 3000;

/** The containers' states, looked at every half second until `until` or until one is in trouble. */
async function watchContainers(containers: readonly string[], until: number): Promise<ContainerHealth[]> {
  for (;;) {
    const states = await containerHealth(containers);
    const trouble = states.length < containers.length || states.some((c) => c.status !== "running" || c.restarts > 0);
    if (trouble || Date.now() >= until) return states;
    await sleep(Math.min(500, Math.max(0, until - Date.now())));
  }
}

/**
 * The Slurm wait's deadline, which the hub's wait steers: at least 10 s left once the hub answers;
 * none once it failed.
 */
class SlurmWait {
  /** When the hub answered, if it has. */
  hubAnsweredAt: number | undefined;

  constructor(public deadline: number) {}

  hurry(atLeastUntil: number): void {
    this.hubAnsweredAt = Date.now();
    this.deadline = Math.max(this.deadline, atLeastUntil);
  }

  stop(): void {
    this.deadline = 0;
  }
}

/** Between looks at the ready file (a stat: next to nothing). */
const READY_FILE_POLL_MS = 50;
/**
 * How long after the hub answered the ready file may still be missing before Slurm is probed
 * through `podman exec` instead (a Slurm image built before its start script wrote the file).
 */
const READY_FILE_GRACE_MS = 2000;

/**
 * Watches the ready file: "ready" once it was written after `since`; "probe" when it cannot be
 * looked at, or is still missing a while after the hub answered.
 */
async function watchReadyFile(file: ReadyFile, wait: SlurmWait, report: () => void): Promise<"ready" | "probe" | "late"> {
  for (;;) {
    const st = await stat(file.path).catch((err: NodeJS.ErrnoException) => (err.code === "ENOENT" ? undefined : err));
    if (st instanceof Error) return "probe";
    if (st !== undefined && st.mtimeMs >= file.since) return "ready";
    const now = Date.now();
    if (now >= wait.deadline) return "late";
    if (wait.hubAnsweredAt !== undefined && now - wait.hubAnsweredAt >= READY_FILE_GRACE_MS) return "probe";
    report();
    await sleep(READY_FILE_POLL_MS);
  }
}

/**
 * A spawn goes hub -> ssh -> sudo -> sbatch, so the Slurm container is ready when its sshd accepts
 * connections and slurmctld answers. Its start script writes `readyFile` then; without one (or
 * when it does not come), both are checked inside the container, where port 22 is, every 0.1 s
 * for a round of SLURM_PROBE_ROUND_S.
 */
async function waitForSlurm(container: string, wait: SlurmWait, out: Output, readyFile?: ReadyFile): Promise<boolean> {
  const start = Date.now();
  let lastReport = start;
  // Every 5 s of either wait, the time since the Slurm wait began.
  const report = () => {
    if (Date.now() - lastReport < 5000) return;
    out.progress(`  waiting for Slurm (${Math.round((Date.now() - start) / 1000)} s)`);
    lastReport = Date.now();
  };
  if (readyFile !== undefined) {
    const seen = await watchReadyFile(readyFile, wait, report);
    if (seen !== "probe") return seen === "ready";
  }
  const tries = SLURM_PROBE_ROUND_S * 10;
  const round = [
    "bash",
    "-c",
    `for ((i = 0; i < ${tries}; i++)); do (exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null && scontrol ping 2>/dev/null | grep -q 'is UP' && exit 0; sleep 0.1; done; exit 1`,
  ];
  while (Date.now() < wait.deadline) {
    const began = Date.now();
    const r = await execInContainer(container, round, (SLURM_PROBE_ROUND_S + 10) * 1000).catch(() => undefined);
    if (r?.exitCode === 0) return true;
    report();
    // A round that ended at once did not run (no container yet): wait a little before the next.
    if (Date.now() - began < 1000) await sleep(SLURM_PROBE_RETRY_MS);
  }
  return false;
}

async function requireSlurmReady(env: Environment, ready: Promise<boolean>, out: Output): Promise<void> {
  if (env.slurm !== "pod") return;
  const slurm = podmanContainerName(env.name, "slurm");
  if (await ready) {
    out.say(`Slurm ready (sshd listening, slurmctld up)`);
    return;
  }
  out.say(`the Slurm container did not become ready (sshd on port 22 and slurmctld answering) in time`);
  out.say(`--- last log lines of ${slurm} ---`);
  out.say((await containerLogs(slurm, 30).catch((e: Error) => e.message)).trimEnd());
  out.say(`the pod is left as it is for inspection; 'brics-env down ${env.name}' removes it`);
  throw new ReportedFailure("the Slurm container did not become ready");
}
