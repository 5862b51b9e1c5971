/**
 * `brics-env down`: removes the pod; with --force also the environment's volumes and Secrets.
 * Before anything is removed it asks the hub which user servers run: `down` says so (and what
 * becomes of their jobs), `down --force` refuses while any run unless told to stop them through
 * the hub first (--stop-servers, which cancels their jobs) or to go ahead anyway (--ignore-servers).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Environment } from "../plan/environments.js";
import { podmanObjectsOf } from "../plan/podmanObjects.js";
import { playWorkDir, podmanContainerName, SPAWNER_JOB_NAME } from "../plan/names.js";
import { hubStatus, serverNames, stopServers, type HubAnswer } from "../effects/hubApi.js";
import { containerHealth, execInContainer, kubeDown } from "../effects/podman.js";
import { consoleOutput, UsageError, type Output } from "./common.js";

export interface DownOptions {
  readonly force?: boolean;
  /** Stop every user server through the hub (cancelling its Slurm job) before removing anything. */
  readonly stopServers?: boolean;
  /** Remove even though user servers run (or the hub cannot say). */
  readonly ignoreServers?: boolean;
}

/** How long the hub gets to stop every server (each spawner cancels its job and waits for it to go). */
const STOP_TIMEOUT_S = 180;
/** How long, after the hub reports them stopped, their jobs may take to leave an in-pod queue. */
const QUEUE_TIMEOUT_MS = 30_000;

function servers(n: number): string {
  return `${n} user server${n === 1 ? "" : "s"}`;
}

/** What becomes of running servers' jobs when the pod goes, by where Slurm runs. */
export function jobsFate(env: Environment, n: number): string {
  const they = n === 1 ? "its Slurm job" : "their Slurm jobs";
  return env.slurm === "pod"
    ? `${they} run${n === 1 ? "s" : ""} in the pod's Slurm container and end${n === 1 ? "s" : ""} with it`
    : `${they} keep${n === 1 ? "s" : ""} running on the Slurm host, and the next 'up' finds ${n === 1 ? "it" : "them"} again`;
}

/**
 * Why `down --force` will not go ahead, or undefined when it may: running servers (or a hub that
 * cannot say) need --stop-servers or --ignore-servers.
 */
export function forceRefusal(env: Environment, answer: HubAnswer): string | undefined {
  const how =
    `'brics-env down ${env.name} --force --stop-servers' stops them through the hub first (cancelling their jobs); ` +
    `--ignore-servers removes everything anyway`;
  if ("error" in answer) {
    return `cannot tell whether user servers are running: the hub does not answer (${answer.error}). ${how}`;
  }
  const n = answer.servers.running + answer.servers.pending;
  if (n === 0) return undefined;
  return (
    `${servers(n)} ${n === 1 ? "is" : "are"} running or starting; --force would remove the hub's database, ` +
    `its only record of ${n === 1 ? "it" : "them"}, while ${jobsFate(env, n)}. Nothing was removed. ${how}`
  );
}

export async function downCommand(env: Environment, deployDir: string, opts: DownOptions, out: Output = consoleOutput): Promise<void> {
  if (opts.stopServers === true && opts.ignoreServers === true) throw new UsageError("--stop-servers and --ignore-servers exclude each other");
  const objects = podmanObjectsOf(env);
  const hub = podmanContainerName(env.name, "jupyterhub");
  const [hubState] = await containerHealth([hub]);
  if (hubState?.status === "running" && opts.ignoreServers !== true) {
    const answer = await hubStatus(env);
    const n = "error" in answer ? 0 : answer.servers.running + answer.servers.pending;
    if (opts.stopServers === true) {
      if ("error" in answer) throw new Error(`cannot stop the user servers: the hub does not answer (${answer.error}); nothing was removed`);
      if (n > 0) await stopAllServers(env, out);
      else out.say("no user server is running");
    } else if (opts.force === true) {
      const refusal = forceRefusal(env, answer);
      if (refusal !== undefined) throw new Error(refusal);
    } else if ("error" in answer) {
      out.warn(`could not ask the hub which user servers run (${answer.error})`);
    } else if (n > 0) {
      out.say(`${servers(n)} ${n === 1 ? "is" : "are"} running or starting: ${jobsFate(env, n)}`);
    }
  } else if (opts.ignoreServers === true && hubState?.status === "running") {
    // Not asked on purpose; still say what becomes of whatever runs, so nobody is surprised.
    out.say(
      env.slurm === "pod"
        ? "--ignore-servers: the hub was not asked; any user server's job ends with the pod's Slurm container"
        : "--ignore-servers: the hub was not asked; any user server's job keeps running on the Slurm host " +
            `(squeue --name ${SPAWNER_JOB_NAME} there), and a backup restored before the next 'up' finds it again`,
    );
  } else if (hubState?.status !== "running" && env.slurm === "external" && (opts.force === true || opts.stopServers === true)) {
    out.say(
      `the hub is not running, so brics-env cannot ask it which user servers run or stop them: jobs started before it stopped ` +
        `may still run on the Slurm host (squeue --name ${SPAWNER_JOB_NAME} there)`,
    );
  }

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

/**
 * Stops every server through the hub; with Slurm in the pod, also waits until their jobs have
 * left its queue. Throws (before anything is removed) when either does not happen in time.
 */
async function stopAllServers(env: Environment, out: Output): Promise<void> {
  const started = Date.now();
  out.progress(`stopping the user servers through the hub (up to ${STOP_TIMEOUT_S} s) ...`);
  const answer = await stopServers(env, STOP_TIMEOUT_S);
  if ("error" in answer) {
    throw new Error(`stopping the user servers failed: ${answer.error}; nothing was removed`);
  }
  out.say(`stopped ${servers(answer.stopped.length)} through the hub (${serverNames(answer.stopped)}), cancelling ${answer.stopped.length === 1 ? "its Slurm job" : "their Slurm jobs"}, in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (env.slurm !== "pod") return;
  const slurm = podmanContainerName(env.name, "slurm");
  const deadline = Date.now() + QUEUE_TIMEOUT_MS;
  for (;;) {
    const r = await execInContainer(slurm, ["squeue", "--noheader", `--name=${SPAWNER_JOB_NAME}`, "--format=%i %T"], 15_000);
    const jobs = r.exitCode === 0 ? r.stdout.split("\n").filter((l) => l.trim() !== "") : undefined;
    if (jobs !== undefined && jobs.length === 0) {
      out.say(`no user server's job is left in the Slurm queue`);
      return;
    }
    if (Date.now() > deadline) {
      const what = jobs === undefined ? `squeue failed: ${r.stderr.trim()}` : `still there: ${jobs.join(", ")}`;
      throw new Error(`the hub stopped the servers, but their Slurm jobs did not leave the queue in ${QUEUE_TIMEOUT_MS / 1000} s (${what}); nothing was removed`);
    }
    await sleep(250);
  }
}
