/**
 * After `up` in a Zenith environment: is the tunnel holding? The Zenith client exits whenever its
 * tunnel fails (server unreachable, key not registered, handshake refused or timed out) and podman
 * restarts it, so a broken tunnel shows nowhere but in the container's restart count.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { containerHealth, containerLogs, type ContainerHealth } from "../effects/podman.js";
import type { Output } from "./common.js";

export interface WatchOptions {
  /** When the pod was started; the watch ends windowMs after it. */
  readonly since: number;
  /** Longer than the client's own handshake timeout (configure_timeout, 10 s by default). */
  readonly windowMs?: number;
  readonly intervalMs?: number;
  readonly health?: (name: string) => Promise<ContainerHealth | undefined>;
  readonly logs?: (name: string) => Promise<string>;
}

export const ZENITH_WATCH_MS = 15_000;

/**
 * Watches the client until the window ends or it restarts; true when it ran throughout. A client
 * seen stopped before its first restart is watched on: it exits as soon as its tunnel fails and
 * podman restarts it a moment later, so "stopped" then means "restarting".
 */
export async function watchZenithClient(container: string, out: Output, opts: WatchOptions): Promise<boolean> {
  const health = opts.health ?? (async (name: string) => (await containerHealth([name]))[0]);
  const logs = opts.logs ?? ((name: string) => containerLogs(name, 15).catch((e: Error) => e.message));
  const end = opts.since + (opts.windowMs ?? ZENITH_WATCH_MS);
  let h: ContainerHealth | undefined;
  for (;;) {
    h = await health(container);
    if (h === undefined || h.restarts > 0 || Date.now() >= end) break;
    await sleep(Math.min(opts.intervalMs ?? 1000, Math.max(0, end - Date.now())));
  }
  const waited = Math.round((Date.now() - opts.since) / 1000);
  if (h !== undefined && h.restarts === 0 && h.status === "running") {
    out.say(`${container} running, no restart in ${waited} s`);
    return true;
  }
  const what = h === undefined ? "is gone" : h.restarts > 0 ? `keeps restarting (${h.restarts} restart${h.restarts === 1 ? "" : "s"} in ${waited} s)` : `is ${h.status}`;
  out.warn(
    `${container} ${what}: the Zenith tunnel is not up. Check serverAddress and serverPort in zenith_client_config.yaml, ` +
      `and that ssh_zenith_client_key is registered with the Zenith server. Its last log lines:`,
  );
  out.warn((await logs(container)).trimEnd().split("\n").join("\n    "));
  return false;
}
