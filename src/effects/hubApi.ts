/**
 * What brics-env asks a running hub (version, users, servers) and has it do (stop every server),
 * inside its container: brics_hub/hub_api.py (this package's copy) is piped into python3 there,
 * reads the brics-env service's token from the hub's data directory and calls the Hub API through
 * the hub's proxy. The token is never on a command line and never leaves the container.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Environment } from "../plan/environments.js";
import { PROXY_PORT } from "../plan/manifest.js";
import { podmanContainerName } from "../plan/names.js";
import { repoRoot } from "../paths.js";
import { podmanAllowFailure } from "./podman.js";

const HUB_MODULE = "volumes/jupyterhub_root/etc/jupyterhub/brics_hub";
/** The hub module as the hub container mounts it (jupyterhub_root's etc/jupyterhub at /etc/jupyterhub). */
const SETTINGS_IN_CONTAINER = "/etc/jupyterhub/brics_hub/settings.py";
const TIMEOUT_MS = 30_000;

export interface HubStatus {
  readonly version: string;
  readonly users: number;
  readonly servers: { readonly running: number; readonly pending: number };
}

export type HubAnswer = HubStatus | { readonly error: string };

export interface ServerRef {
  readonly user: string;
  /** "" for the user's default server. */
  readonly server: string;
}

export type StopAnswer = { readonly stopped: readonly ServerRef[] } | { readonly error: string; readonly left?: readonly ServerRef[] };

/** Runs hub_api.py with `action` in the hub container; its one line of JSON, or {error}. */
async function askHub<T>(env: Environment, action: readonly string[], timeoutMs: number): Promise<T | { error: string }> {
  const script = await readFile(join(repoRoot(), HUB_MODULE, "hub_api.py"), "utf8");
  const container = podmanContainerName(env.name, "jupyterhub");
  const args = ["exec", "-i", container, "python3", "-", SETTINGS_IN_CONTAINER, `http://127.0.0.1:${PROXY_PORT}`, ...action];
  const r = await podmanAllowFailure(args, { input: script, timeoutMs }).catch((e: unknown) => ({
    exitCode: -1,
    stdout: "",
    stderr: (e as Error).message,
  }));
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as T | { error: string };
  } catch {
    const why = (r.stderr.trim() || r.stdout.trim()).split("\n").pop() ?? "";
    return { error: `podman exec ${container} python3 exited ${r.exitCode}${why === "" ? "" : `: ${why}`}` };
  }
}

export function hubStatus(env: Environment): Promise<HubAnswer> {
  return askHub<HubStatus>(env, ["status"], TIMEOUT_MS);
}

/** Stops every user server through the hub (each spawner cancels its job) and waits up to `timeoutS` until none is listed. */
export function stopServers(env: Environment, timeoutS: number): Promise<StopAnswer> {
  return askHub<StopAnswer>(env, ["stop-servers", String(timeoutS)], (timeoutS + 60) * 1000);
}

export function describeHub(answer: HubAnswer): string {
  if ("error" in answer) return `not answering (${answer.error})`;
  const n = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;
  const { running, pending } = answer.servers;
  return `JupyterHub ${answer.version}, ${n(answer.users, "user")}, ${n(running, "server")} running${pending > 0 ? `, ${pending} starting` : ""}`;
}

/** "alice, dave/gpu": servers as the hub's admin page names them. */
export function serverNames(servers: readonly ServerRef[]): string {
  return servers.map((s) => (s.server === "" ? s.user : `${s.user}/${s.server}`)).join(", ");
}
