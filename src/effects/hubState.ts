/**
 * The hub's state on the jupyterhub_root volume, reached through containers: brics_hub/hub_state.py
 * (this package's copy, so an older copy on the volume does not matter) runs with `python3 -c` in the
 * hub container (`podman exec`) or, when the hub is not running, in a throw-away container of the
 * hub image with the volume mounted. Nothing here needs the volume on this machine, so it works
 * with a remote podman too. Secrets pass through stdin and stdout only, and a failure reports
 * the script's stderr, never its output.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { HUB_STATE_FILES, KEPT_HUB_FILES } from "../plan/backup.js";
import { repoRoot } from "../paths.js";
import { execInContainer, imageId, runOneOff } from "./podman.js";

const HUB_STATE_SCRIPT = "volumes/jupyterhub_root/etc/jupyterhub/brics_hub/hub_state.py";
const SRV = "/srv/jupyterhub";
/** Where a throw-away container mounts the jupyterhub_root volume. */
const VOLUME_MOUNT = "/v";

let scriptText: Promise<string> | undefined;
function script(): Promise<string> {
  scriptText ??= readFile(join(repoRoot(), HUB_STATE_SCRIPT), "utf8");
  return scriptText;
}

/** Where to run hub_state.py: in the running hub, or in a throw-away container of its image. */
export type HubPlace = { readonly container: string } | { readonly image: string; readonly volume: string };

export function describePlace(place: HubPlace): string {
  return "container" in place ? `the running hub (${place.container})` : `the hub's volume ${place.volume}, read with ${place.image}`;
}

export class HubStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HubStateError";
  }
}

async function runScript(place: HubPlace, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const text = await script();
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const keep = KEPT_HUB_FILES.flatMap((name) => ["--keep", name]);
  const r =
    "container" in place
      ? await execInContainer(place.container, ["python3", "-c", text, ...args, "--srv", SRV, ...keep], timeoutMs, opts.input)
      : await runOneOff(place.image, ["-c", text, ...args, "--srv", `${VOLUME_MOUNT}${SRV}`, ...keep], {
          entrypoint: "python3",
          volumes: { [place.volume]: VOLUME_MOUNT },
          timeoutMs,
          ...(opts.input !== undefined ? { input: opts.input } : {}),
        });
  if (r.exitCode !== 0) {
    const last = r.stderr.trim().split("\n").filter((l) => l.trim() !== "").slice(-3).join("\n    ");
    throw new HubStateError(`hub_state.py ${args[0] ?? ""} in ${describePlace(place)} failed (exit ${r.exitCode})${last === "" ? "" : `:\n    ${last}`}`);
  }
  return r.stdout;
}

export interface HubSnapshot {
  /** HUB_STATE_FILES, and the KEPT_HUB_FILES the hub has. */
  readonly files: ReadonlyMap<string, Buffer>;
  /** The JupyterHub version that last wrote the database, when recorded. */
  readonly jupyterhub: string | null;
}

/** A consistent copy of the hub's state (SQLite's online backup API, also while the hub runs). */
export async function snapshotHubState(place: HubPlace): Promise<HubSnapshot> {
  const out = JSON.parse(await runScript(place, ["snapshot"])) as { files: Record<string, string>; version_record: { jupyterhub?: string } | null };
  const files = new Map(Object.entries(out.files).map(([name, b64]) => [name, Buffer.from(b64, "base64")]));
  for (const name of HUB_STATE_FILES) if (!files.has(name)) throw new HubStateError(`hub_state.py snapshot did not return ${name}`);
  return { files, jupyterhub: out.version_record?.jupyterhub ?? null };
}

export interface RestoredSummary {
  readonly users: number;
  readonly activeServers: number;
}

/** Writes a snapshot into the volume, replacing the state there (the hub must not be running). */
export async function restoreHubState(place: { image: string; volume: string }, snapshot: HubSnapshot): Promise<RestoredSummary> {
  const input = JSON.stringify({
    format: 1,
    files: Object.fromEntries([...snapshot.files].map(([n, data]) => [n, data.toString("base64")])),
    version_record: snapshot.jupyterhub === null ? null : { jupyterhub: snapshot.jupyterhub, image_id: "" },
  });
  const summary = JSON.parse(await runScript(place, ["restore"], { input })) as { users: number; active_servers: number };
  return { users: summary.users, activeServers: summary.active_servers };
}

export interface HubInfo {
  readonly database: boolean;
  readonly users: number;
  readonly activeServers: ReadonlyArray<{ user: string; server: string }>;
  readonly jupyterhub: string | null;
}

/** What the volume holds: a database or not, its users and the servers it records as running. */
export async function hubInfo(place: HubPlace): Promise<HubInfo> {
  const o = JSON.parse(await runScript(place, ["info"])) as {
    database: boolean;
    users: number;
    active_servers: Array<{ user: string; server: string }>;
    version_record: { jupyterhub?: string } | null;
  };
  return { database: o.database, users: o.users, activeServers: o.active_servers, jupyterhub: o.version_record?.jupyterhub ?? null };
}

/** The JupyterHub version inside an image. */
export async function imageJupyterhubVersion(image: string): Promise<string> {
  const r = await runOneOff(image, ["-c", "import jupyterhub; print(jupyterhub.__version__)"], { entrypoint: "python3", timeoutMs: 120_000 });
  const version = r.stdout.trim();
  if (r.exitCode !== 0 || !/^\d+\.\d+/.test(version)) {
    throw new HubStateError(`cannot tell the JupyterHub version of ${image}: ${(r.stderr.trim() || version).split("\n").slice(-1)[0] ?? ""}`);
  }
  return version;
}

/** `jupyterhub upgrade-db` on the volume's database with `image`'s JupyterHub, then records `to` as its version. */
export async function upgradeDatabase(image: string, volume: string, to: string): Promise<void> {
  // Only the database URL matters to upgrade-db: run where there is no jupyterhub_config.py to read
  // (it skips a missing default one, and refuses one named that is not a config file).
  const r = await runOneOff(image, ["upgrade-db", `--db=sqlite:///${VOLUME_MOUNT}${SRV}/jupyterhub.sqlite`], {
    entrypoint: "jupyterhub",
    workdir: "/tmp",
    volumes: { [volume]: VOLUME_MOUNT },
    timeoutMs: 600_000,
  });
  if (r.exitCode !== 0) {
    const output = `${r.stdout}${r.stderr}`.trim().split("\n").slice(-5).join("\n    ");
    throw new HubStateError(`jupyterhub upgrade-db with ${image} failed (exit ${r.exitCode}):\n    ${output}`);
  }
  // Recorded beside the image's id, so that the next `up` with this image need not ask it its version.
  const id = await imageId(image);
  await runScript({ image, volume }, ["set-version", "--version", to, ...(id !== undefined ? ["--image-id", id] : [])]);
}
