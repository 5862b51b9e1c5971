/**
 * `brics-env restore`: brings an environment's state back from a `backup` archive — the hub's
 * database (its users, their auth state, the records of running servers), cookie secret, crypt
 * key and the services' tokens into the jupyterhub_root volume, the deploy ConfigMap and keys
 * into the deploy directory. The archive is checked completely before anything is touched. An
 * environment that is live (its hub runs, its volume holds a database, or deploy files differ)
 * is replaced only with --overwrite, and then backed up first. Restore starts nothing: `up` does.
 */
import { constants } from "node:fs";
import { copyFile, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { KEPT_HUB_FILES, readBackup } from "../plan/backup.js";
import { deployFilesFor, type DeployFileName } from "../plan/deployFiles.js";
import type { Environment } from "../plan/environments.js";
import { imageRef, podmanContainerName, volumeName } from "../plan/names.js";
import { volumesOf } from "../plan/volumes.js";
import { ArchiveError, readBackupArchive } from "../effects/backupArchive.js";
import { writeFileAtomic } from "../effects/deployDir.js";
import { hubInfo, restoreHubState, type HubInfo } from "../effects/hubState.js";
import { containerHealth, containerStop, imageExists, volumeExists } from "../effects/podman.js";
import { defaultBackupFile, writeBackup } from "./backup.js";
import { consoleOutput, displayPath, ReportedFailure, variables, type Output } from "./common.js";
import { createVolumeFromTree } from "./resources.js";

export interface RestoreOptions {
  /** Replace a live environment's state and differing deploy files (after backing them up). */
  readonly overwrite?: boolean;
}

export interface RestoreResult {
  readonly users: number;
  readonly activeServers: number;
  readonly ms: number;
  /** The backup of what was replaced, when anything was. */
  readonly replacedBackup?: string;
}

function count(n: number, one: string): string {
  return `${n} ${one}${n === 1 ? "" : "s"}`;
}

export async function restoreCommand(env: Environment, file: string, deployDir: string, opts: RestoreOptions, out: Output = consoleOutput): Promise<RestoreResult> {
  const started = Date.now();
  // 1. The archive, completely, before anything else.
  const entries = await readBackupArchive(file).catch((err: unknown) => {
    if (err instanceof ArchiveError) throw new Error(`${displayPath(file)} cannot be read: ${err.message}`);
    throw err;
  });
  const reading = readBackup(env, entries);
  if (!reading.ok) {
    out.say(`${displayPath(file)} cannot be restored; nothing was changed:`);
    for (const p of reading.problems) out.say(`  - ${p}`);
    throw new ReportedFailure(`${displayPath(file)} is not a usable backup of ${env.name}`);
  }
  const { manifest, contents } = reading;
  out.say(`${displayPath(file)}: a backup of ${env.name} taken ${manifest.created} by brics-env ${manifest.bricsEnv}${manifest.jupyterhub === null ? "" : ` (JupyterHub ${manifest.jupyterhub})`}; checksums match`);

  // 2. What is there now.
  const image = imageRef("brics_jupyterhub", env.stage);
  if (!(await imageExists(image))) throw new Error(`image ${image}, which writes the hub's state into its volume, is not there; build it with: brics-env resources ${env.name}`);
  const hub = podmanContainerName(env.name, "jupyterhub");
  const volume = volumeName("jupyterhub_root", env.name);
  const [hubState] = await containerHealth([hub]);
  const hubRunning = hubState?.status === "running";
  const current: HubInfo | undefined = (await volumeExists(volume)) ? await hubInfo(hubRunning ? { container: hub } : { image, volume }) : undefined;
  const deployWrites: Array<{ name: DeployFileName; data: Buffer; replaces: boolean }> = [];
  for (const [name, data] of contents.deploy) {
    const existing = await readFile(join(deployDir, name)).catch(() => undefined);
    if (existing === undefined || !existing.equals(data)) deployWrites.push({ name, data, replaces: existing !== undefined });
  }
  const live: string[] = [];
  if (hubRunning) live.push(`its hub is running (${hub})`);
  if (current?.database === true) {
    live.push(`volume ${volume} holds a hub database (${count(current.users, "user")}, ${count(current.activeServers.length, "server")} recorded as running)`);
  }
  const replaced = deployWrites.filter((w) => w.replaces).map((w) => w.name);
  if (replaced.length > 0) live.push(`${displayPath(deployDir)} has other ${replaced.join(", ")}`);
  if (live.length > 0 && opts.overwrite !== true) {
    throw new Error(
      `${env.name} is live: ${live.join("; ")}. Restoring would replace that; nothing was changed. ` +
        `--overwrite replaces it, after backing up what it replaces`,
    );
  }

  // 3. What is replaced is backed up first.
  let replacedBackup: string | undefined;
  if (current?.database === true) {
    const written = await writeBackup(env, deployDir, hubRunning ? { container: hub } : { image, volume }, defaultBackupFile(env, deployDir, "before-restore"), {
      allowMissingConfigMap: true,
    });
    replacedBackup = written.file;
    out.say(`backed up what is replaced to ${displayPath(written.file)}`);
  }
  if (hubRunning) {
    out.progress(`stopping ${hub} (the other containers keep running) ...`);
    await containerStop(hub, 30);
    out.say(`stopped ${hub}; 'brics-env up ${env.name}' starts it again with the restored state`);
  }

  // 4. The hub's state into its volume (made from the package's tree when it is not there).
  if (current === undefined) {
    const plan = volumesOf(env, variables()).find((v) => v.kind === "jupyterhub_root")!;
    await createVolumeFromTree(env, plan, out);
  }
  const summary = await restoreHubState({ image, volume }, { files: contents.hub, jupyterhub: contents.jupyterhub });
  out.say(`restored the hub's database (${count(summary.users, "user")}, their auth state, ${count(summary.activeServers, "server")} recorded as running), cookie secret, crypt key${KEPT_HUB_FILES.some((n) => contents.hub.has(n)) ? " and service tokens" : ""} into ${volume}`);

  // 5. The deploy directory. Files it replaces are kept: in the backup just taken, or, when there
  //    was no hub state to back up, copied into backups/ first.
  const modes = new Map(deployFilesFor(env).map((f) => [f.name, f.secret ? 0o600 : 0o644]));
  const replacedFiles = deployWrites.filter((w) => w.replaces);
  if (replacedBackup === undefined && replacedFiles.length > 0) {
    const keep = defaultBackupFile(env, deployDir, "replaced-deploy-files").replace(/\.tar\.gz$/, "");
    await mkdir(keep, { recursive: true, mode: 0o700 });
    for (const w of replacedFiles) await copyFile(join(deployDir, w.name), join(keep, w.name), constants.COPYFILE_EXCL);
    out.say(`kept the deploy files it replaces (${replacedFiles.map((w) => w.name).join(", ")}) in ${displayPath(keep)}`);
  }
  for (const w of deployWrites) {
    await writeFileAtomic(join(deployDir, w.name), w.data, { overwrite: w.replaces, mode: modes.get(w.name) ?? 0o600 });
  }
  const kept = contents.deploy.size - deployWrites.length;
  if (deployWrites.length > 0) out.say(`wrote ${deployWrites.map((w) => w.name).join(", ")} into ${displayPath(deployDir)}${kept > 0 ? ` (${kept} more already as in the backup)` : ""}`);
  else if (contents.deploy.size > 0) out.say(`${displayPath(deployDir)} already holds the backup's deploy files`);
  if (!contents.deploy.has("deploy-configmap.yaml")) out.warn(`the backup holds no deploy-configmap.yaml: ${displayPath(deployDir)} needs the environment's own before 'up'`);

  const ms = Date.now() - started;
  out.say(`restored ${env.name} in ${(ms / 1000).toFixed(1)} s`);
  if (summary.activeServers > 0) {
    out.say(
      `  the hub asks Slurm about the ${count(summary.activeServers, "server")} recorded as running when it starts: ` +
        "a job still running is reachable again, one that has ended is shown as stopped",
    );
  }
  out.say(`  bring it up with: brics-env up ${env.name} ${displayPath(deployDir)}`);
  return { users: summary.users, activeServers: summary.activeServers, ms, ...(replacedBackup !== undefined ? { replacedBackup } : {}) };
}
