/**
 * `brics-env backup`: one archive of what cannot be regenerated — the hub's database (copied with
 * SQLite's online backup API, consistent while the hub runs), cookie secret and crypt key (and the
 * services' tokens), the deploy ConfigMap and the key files — with a format version and each
 * file's checksum inside. Written 0600: it holds every secret of the environment.
 */
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { backedUpDeployFiles, backupEntries, backupFileName } from "../plan/backup.js";
import type { DeployFileName } from "../plan/deployFiles.js";
import type { Environment } from "../plan/environments.js";
import { DEPLOY_CONFIGMAP_FILE, imageRef, podmanContainerName, volumeName } from "../plan/names.js";
import { writeBackupArchive } from "../effects/backupArchive.js";
import { snapshotHubState, type HubPlace } from "../effects/hubState.js";
import { containerHealth, imageExists, volumeExists } from "../effects/podman.js";
import { packageVersion } from "../paths.js";
import { consoleOutput, displayPath, type Output } from "./common.js";

/** Where backups go unless a file is named: beside the deploy files they hold. */
export function backupDir(deployDir: string): string {
  return join(deployDir, "backups");
}

/** Where the hub's state is read: in the running hub, or with a throw-away container of its image. */
export async function hubPlace(env: Environment): Promise<HubPlace> {
  const hub = podmanContainerName(env.name, "jupyterhub");
  const [state] = await containerHealth([hub]);
  if (state?.status === "running") return { container: hub };
  const volume = volumeName("jupyterhub_root", env.name);
  const image = imageRef("brics_jupyterhub", env.stage);
  if (!(await volumeExists(volume))) throw new Error(`${env.name} has no volume ${volume}: there is no hub state to back up`);
  if (!(await imageExists(image))) {
    throw new Error(`the hub is not running and image ${image}, which reads its state, is not there; build it with: brics-env resources ${env.name}`);
  }
  return { image, volume };
}

export interface WrittenBackup {
  readonly file: string;
  readonly bytes: number;
  readonly ms: number;
}

export interface WriteBackupOptions {
  /** Without the deploy ConfigMap the archive cannot bring the environment back by itself: refuse unless allowed. */
  readonly allowMissingConfigMap?: boolean;
}

/** Takes the backup into `file` (which must not exist): 0600, in a 0700 directory when brics-env makes it. */
export async function writeBackup(env: Environment, deployDir: string, place: HubPlace, file: string, opts: WriteBackupOptions = {}): Promise<WrittenBackup> {
  const started = Date.now();
  if (existsSync(file)) throw new Error(`${displayPath(file)} already exists; not overwriting it`);
  const deploy = new Map<DeployFileName, Buffer>();
  for (const f of backedUpDeployFiles(env)) {
    const data = await readFile(join(deployDir, f.name)).catch(() => undefined);
    if (data !== undefined) deploy.set(f.name, data);
  }
  if (!deploy.has(DEPLOY_CONFIGMAP_FILE) && opts.allowMissingConfigMap !== true) {
    throw new Error(`${displayPath(join(deployDir, DEPLOY_CONFIGMAP_FILE))} is missing: name ${env.name}'s deploy directory with --deploy-dir`);
  }
  const snapshot = await snapshotHubState(place);
  const created = new Date();
  const entries = backupEntries({ environment: env.name, jupyterhub: snapshot.jupyterhub, hub: snapshot.files, deploy }, { created, bricsEnv: packageVersion() });
  const dir = dirname(file);
  if (!existsSync(dir)) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  }
  await writeBackupArchive(file, entries, created);
  return { file, bytes: entries.reduce((n, e) => n + e.data.length, 0), ms: Date.now() - started };
}

/** A backup into the deploy directory's backups/, named for the environment, the time and `why`. */
export function defaultBackupFile(env: Environment, deployDir: string, why?: string): string {
  return join(backupDir(deployDir), backupFileName(env.name, new Date(), why));
}

export async function backupCommand(env: Environment, deployDir: string, file: string | undefined, out: Output = consoleOutput): Promise<WrittenBackup> {
  const place = await hubPlace(env);
  const written = await writeBackup(env, deployDir, place, file ?? defaultBackupFile(env, deployDir));
  const from = "container" in place ? "from the running hub, with SQLite's online backup" : "from the stopped hub's volume";
  out.say(`wrote ${displayPath(written.file)} (${Math.ceil(written.bytes / 1024)} KiB) in ${(written.ms / 1000).toFixed(1)} s, ${from}`);
  out.say(
    "  it holds the environment's secrets (the hub's cookie secret and crypt key, its database with users' auth state, " +
      "the deploy ConfigMap and private keys): it is written 0600; keep it where only the service's administrators can read it",
  );
  out.say(`  restore with: brics-env restore ${env.name} ${displayPath(written.file)} ${displayPath(deployDir)}`);
  return written;
}
