/**
 * `brics-env up`: everything from an empty deploy directory to a hub answering on its health
 * endpoint — init (when there is no ConfigMap), check, resources, manifest, kube play, wait.
 * A running pod is left alone; volumes are never recreated.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { containersOf, type Environment } from "../plan/environments.js";
import { publishedPorts, PROXY_PORT } from "../plan/manifest.js";
import { DEPLOY_CONFIGMAP_FILE, imageRef, podmanContainerName, podName } from "../plan/names.js";
import { readDeployConfigValues } from "../plan/validate.js";
import { CommandError } from "../effects/exec.js";
import { healthUrl, waitForHealth } from "../effects/hubHealth.js";
import { imagesOf } from "../plan/images.js";
import { containerHealth, containerLogs, execInContainer, imageExists, kubePlay, podInspect, podRm } from "../effects/podman.js";
import { setTimeout as sleep } from "node:timers/promises";
import { checkDeployDir } from "./check.js";
import { consoleOutput, displayPath, ReportedFailure, type Output } from "./common.js";
import { playWorkDir } from "./down.js";
import { initCommand } from "./init.js";
import { manifestCommand } from "./manifest.js";
import { resourcesCommand } from "./resources.js";

export interface UpOptions {
  readonly timeoutSeconds: number;
  readonly publish?: readonly string[];
  /** Skip image builds (when the images are known to be current). */
  readonly build?: boolean;
}

/** Where a browser reaches the proxy, from the published ports (none behind Zenith). */
function proxyAddress(env: Environment, config: Record<string, string>, publish: readonly string[] | undefined) {
  const ports = publishedPorts(env, {
    ...(config["hubConnectUrl"] !== undefined ? { hubConnectUrl: config["hubConnectUrl"] } : {}),
    ...(publish !== undefined ? { publish } : {}),
  });
  const proxy = ports.find((p) => p.containerPort === PROXY_PORT);
  if (proxy === undefined) return undefined;
  const host = proxy.hostIP === "0.0.0.0" || proxy.hostIP === "::" ? "127.0.0.1" : proxy.hostIP;
  return { host: host.includes(":") ? `[${host}]` : host, port: proxy.hostPort };
}

function joinBase(baseUrl: string | undefined, path: string): string {
  const base = `/${(baseUrl ?? "/").replace(/^\/+|\/+$/g, "")}/`.replace(/^\/\/$/, "/");
  return `${base}${path}`;
}

export async function upCommand(env: Environment, dir: string, opts: UpOptions, out: Output = consoleOutput): Promise<void> {
  const pod = podName(env.name);
  const existing = await podInspect(pod);
  if (existing !== undefined && existing.state === "Running") {
    out.say(`pod ${pod} is already running; nothing changed`);
    out.say(`  to apply changed configuration or images: brics-env down ${env.name} && brics-env up ${env.name}${dir === undefined ? "" : ` ${displayPath(dir)}`} (volumes are kept)`);
    return;
  }
  if (!existsSync(join(dir, DEPLOY_CONFIGMAP_FILE))) {
    out.say(`no ${DEPLOY_CONFIGMAP_FILE} in ${displayPath(dir)}: running init first`);
    await initCommand(env, dir, out);
  }
  await checkDeployDir(env, dir, out);
  await resourcesCommand(env, { build: opts.build !== false }, out);
  if (opts.build === false) {
    for (const image of imagesOf(env)) {
      const ref = imageRef(image, env.stage);
      if (!(await imageExists(ref))) throw new Error(`image ${ref} does not exist; build it with: brics-env resources ${env.name}`);
    }
  }
  const manifest = await manifestCommand(env, dir, opts.publish !== undefined ? { publish: opts.publish } : {}, out);

  if (existing !== undefined) {
    // A pod that exists but is not running (exited, degraded, created) would block kube play; its
    // volumes are separate and stay.
    out.say(`pod ${pod} exists in state ${existing.state}; replacing it (volumes are kept)`);
    await podRm(pod);
  }
  const configMap = join(dir, DEPLOY_CONFIGMAP_FILE);
  const played = await kubePlay(manifest, { workDir: playWorkDir(dir), configmaps: [configMap], onLine: (l) => out.progress(`  ${l}`) }).catch(
    (err: unknown) => {
      // Runtime set-up failures look alike on every host that needs the containers.conf fix.
      if (err instanceof CommandError && /rlimit|cgroup|crun|OCI permission denied/i.test(err.stderrTail)) {
        throw new Error(`${err.message}\npodman cannot start containers here; 'brics-env doctor' explains the fix (the podman settings in podman/50-brics-env.conf)`);
      }
      throw err;
    },
  );
  for (const n of played.notes) out.progress(n);
  out.say(`started pod ${pod}`);

  const config = readDeployConfigValues(await readFile(configMap, "utf8")) ?? {};
  const address = proxyAddress(env, config, opts.publish);
  const timeoutMs = opts.timeoutSeconds * 1000;
  const containers = containersOf(env).map((c) => podmanContainerName(env.name, c));

  if (address === undefined) {
    if (env.slurm === "pod") await requireSlurmReady(env, timeoutMs, out);
    await reportUnhealthyContainers(containers, out);
    out.say(`${env.name} receives user traffic through the Zenith tunnel; not waiting for the hub here.`);
    out.say(`watch it with: brics-env status ${env.name}; brics-env logs ${env.name}`);
    return;
  }
  const url = healthUrl(config["baseUrl"] ?? "/", address.port, address.host);
  out.progress(`waiting up to ${opts.timeoutSeconds} s for ${url} ...`);
  const result = await waitForHealth(url, {
    timeoutMs,
    onProgress: (waited, last) => out.progress(`  still waiting (${Math.round(waited / 1000)} s, last: ${last})`),
    abortCheck: async () => {
      const state = await podInspect(pod);
      if (state === undefined) return `pod ${pod} disappeared`;
      return undefined;
    },
  });
  if (!result.ok) {
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
  out.say(`hub healthy after ${Math.round(result.waitedMs / 1000)} s`);
  if (env.slurm === "pod") await requireSlurmReady(env, Math.max(10_000, timeoutMs - result.waitedMs), out);
  await reportUnhealthyContainers(containers, out);
  out.say(`log in at http://${address.host}:${address.port}${joinBase(config["baseUrl"], "hub/login")}`);
  if (env.auth === "dummy") {
    const firstUser = (config["devUsers"] ?? "").trim().split(/\s+/)[0] ?? "";
    const user = firstUser.split(".")[0] ?? firstUser;
    out.say(`  user: ${user || "(first of devUsers)"} (the dummy authenticator logs everyone in as the first of devUsers)`);
    out.say(`  password: the value of dummyAuthPassword in ${displayPath(configMap)}`);
  } else {
    out.say(`  requests must carry a valid identity token (X-Auth-Id-Token), e.g. through a Zenith tunnel`);
  }
}

/**
 * A healthy hub does not mean a healthy pod: a Slurm container in a restart loop only shows when
 * a user spawns. Give the containers a moment, then name any that is not running or has restarted.
 */
async function reportUnhealthyContainers(containers: readonly string[], out: Output): Promise<void> {
  await sleep(3000);
  for (const c of await containerHealth(containers)) {
    if (c.status === "running" && c.restarts === 0) continue;
    out.warn(`container ${c.name} is ${c.status}${c.restarts > 0 ? ` and has restarted ${c.restarts} time${c.restarts === 1 ? "" : "s"}` : ""}; its last log lines:`);
    const logs = await containerLogs(c.name, 15).catch((e: Error) => e.message);
    out.warn(logs.trimEnd().split("\n").join("\n    "));
  }
}

/**
 * A spawn goes hub -> ssh -> sudo -> sbatch, so the Slurm container is ready when its sshd accepts
 * connections and slurmctld answers; both are checked inside the container, where port 22 is.
 */
async function waitForSlurm(container: string, timeoutMs: number, out: Output): Promise<boolean> {
  const probe = ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/22 && scontrol ping | grep -q 'is UP'"];
  const start = Date.now();
  let lastReport = start;
  while (Date.now() - start < timeoutMs) {
    const r = await execInContainer(container, probe, 15_000).catch(() => undefined);
    if (r?.exitCode === 0) return true;
    if (Date.now() - lastReport >= 5000) {
      out.progress(`  waiting for Slurm (${Math.round((Date.now() - start) / 1000)} s)`);
      lastReport = Date.now();
    }
    await sleep(1000);
  }
  return false;
}

async function requireSlurmReady(env: Environment, timeoutMs: number, out: Output): Promise<void> {
  const slurm = podmanContainerName(env.name, "slurm");
  if (await waitForSlurm(slurm, timeoutMs, out)) {
    out.say(`Slurm ready (sshd listening, slurmctld up)`);
    return;
  }
  out.say(`the Slurm container did not become ready (sshd on port 22 and slurmctld answering) in time`);
  out.say(`--- last log lines of ${slurm} ---`);
  out.say((await containerLogs(slurm, 30).catch((e: Error) => e.message)).trimEnd());
  out.say(`the pod is left as it is for inspection; 'brics-env down ${env.name}' removes it`);
  throw new ReportedFailure("the Slurm container did not become ready");
}
