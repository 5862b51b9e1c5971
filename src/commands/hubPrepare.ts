/**
 * What `up` does to the hub's volume before it (re)starts the hub: brings the repository's part
 * (/etc/jupyterhub: jupyterhub_config.py and the brics_hub module) in line with the package, and
 * upgrades the database, after a backup, when the hub image's JupyterHub is not the one that wrote
 * it. The hub's state files are never touched except by `jupyterhub upgrade-db`.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Environment } from "../plan/environments.js";
import {
  DATABASE_FILE,
  decideDatabaseStep,
  formatVersionRecord,
  parseVersionRecord,
  recordWithImage,
  VERSION_RECORD_FILE,
  type DatabaseStep,
} from "../plan/hubDatabase.js";
import { imageRef, volumeName } from "../plan/names.js";
import { TRACKED_FILES_LIST, trackedFilesOf, volumesOf } from "../plan/volumes.js";
import { hubInfo, imageJupyterhubVersion, upgradeDatabase, type HubPlace } from "../effects/hubState.js";
import { imageId } from "../effects/podman.js";
import { applyTreeDifference, replaceFileKeepingOwner, treeDifference } from "../effects/volumeRefresh.js";
import { repoRoot } from "../paths.js";
import { displayPath, variables, type Output } from "./common.js";
import type { ImagesAfter } from "./resources.js";

/** The part of jupyterhub_root the repository owns, relative to the volume root. */
const HUB_CONFIG_PREFIX = "etc/jupyterhub";

export interface HubFilesDifference {
  /** Changed, new or removed paths as the hub container sees them (`/etc/jupyterhub/...`). */
  readonly paths: readonly string[];
  apply(): Promise<void>;
}

/**
 * How the volume's /etc/jupyterhub differs from the package; undefined when the volume cannot be
 * looked at from here (it does not exist yet, or podman runs on another machine).
 */
export async function hubFilesDifference(env: Environment, mountpoints: ReadonlyMap<string, string>): Promise<HubFilesDifference | undefined> {
  const plan = volumesOf(env, variables()).find((v) => v.kind === "jupyterhub_root")!;
  const mountpoint = mountpoints.get(plan.name);
  if (mountpoint === undefined || !existsSync(join(mountpoint, HUB_CONFIG_PREFIX))) return undefined;
  const root = repoRoot();
  const files = trackedFilesOf(await readFile(join(root, TRACKED_FILES_LIST), "utf8"), plan.kind);
  const sourceRoot = join(root, plan.sourceDir);
  const diff = await treeDifference(sourceRoot, files, mountpoint, HUB_CONFIG_PREFIX);
  const owner = { uid: plan.owner.uid, gid: plan.owner.gid, uname: plan.owner.user, gname: plan.owner.group };
  return {
    paths: [...diff.changed, ...diff.removed].sort().map((p) => `/${p}`),
    apply: () => applyTreeDifference(plan.name, sourceRoot, owner, mountpoint, diff),
  };
}

/**
 * Brings /etc/jupyterhub on the volume in line with the package; the paths it changed.
 * `difference`: hubFilesDifference(env, mountpoints), when the caller started it already.
 */
export async function refreshHubFiles(
  env: Environment,
  mountpoints: ReadonlyMap<string, string>,
  out: Output,
  difference: Promise<HubFilesDifference | undefined> = hubFilesDifference(env, mountpoints),
): Promise<readonly string[]> {
  const diff = await difference;
  if (diff === undefined) {
    if (mountpoints.has(volumeName("jupyterhub_root", env.name))) {
      out.warn(`cannot compare the hub's configuration files on ${volumeName("jupyterhub_root", env.name)} from this machine (podman runs elsewhere): they are left as they are`);
    }
    return [];
  }
  if (diff.paths.length > 0) {
    await diff.apply();
    out.say(`updated the hub's configuration from this package: ${diff.paths.join(", ")}`);
  }
  return diff.paths;
}

/**
 * What the database needs before the environment's hub image starts on it. `images`: the
 * environment's images as resources left them (the hub image's id is read from there when present).
 */
export async function databaseStep(env: Environment, mountpoints: ReadonlyMap<string, string>, images?: ImagesAfter): Promise<DatabaseStep> {
  const volume = volumeName("jupyterhub_root", env.name);
  const mountpoint = mountpoints.get(volume);
  if (mountpoint === undefined) return { kind: "none", why: "no hub volume yet" };
  const image = imageRef("brics_jupyterhub", env.stage);
  const id = images?.get(image)?.id ?? (await imageId(image)) ?? "";
  let facts: Parameters<typeof decideDatabaseStep>[0];
  const srv = join(mountpoint, "srv", "jupyterhub");
  const local = existsSync(srv);
  if (local) {
    const recordText = await readFile(join(srv, VERSION_RECORD_FILE), "utf8").catch(() => undefined);
    facts = { databaseExists: existsSync(join(srv, DATABASE_FILE)), record: parseVersionRecord(recordText), image: { id } };
  } else {
    // Podman on another machine: ask a throw-away container of the image.
    const info = await hubInfo({ image, volume });
    facts = { databaseExists: info.database, record: info.jupyterhub === null ? undefined : { jupyterhub: info.jupyterhub, imageId: "" }, image: { id } };
  }
  const step = decideDatabaseStep(facts);
  if (step.kind !== "ask-image") return step;
  const asked = { ...facts, image: { id, jupyterhub: await imageJupyterhubVersion(image) } };
  const decided = decideDatabaseStep(asked);
  const remember = local ? recordWithImage(asked, decided) : undefined;
  if (remember !== undefined) await replaceFileKeepingOwner(join(srv, VERSION_RECORD_FILE), formatVersionRecord(remember));
  return decided;
}

/**
 * After a play whose hub answered: its start script recorded the JupyterHub that opens the
 * database, but not the image (podman tells an unprivileged container no image id), so the
 * played image's id is put beside it here. The next `up` with this image then need not start a
 * container of it to ask its version. Only local volumes; nothing when the record names it already.
 */
export async function recordPlayedImage(env: Environment, mountpoints: ReadonlyMap<string, string>, images: ImagesAfter): Promise<void> {
  const mountpoint = mountpoints.get(volumeName("jupyterhub_root", env.name));
  const id = images.get(imageRef("brics_jupyterhub", env.stage))?.id;
  if (mountpoint === undefined || id === undefined || id === "") return;
  const file = join(mountpoint, "srv", "jupyterhub", VERSION_RECORD_FILE);
  const record = parseVersionRecord(await readFile(file, "utf8").catch(() => undefined));
  if (record === undefined || record.imageId === id) return;
  await replaceFileKeepingOwner(file, formatVersionRecord({ jupyterhub: record.jupyterhub, imageId: id }));
}

/** What a failed upgrade says: what failed, where the backup taken before it is, how to bring it back. */
export function upgradeFailure(env: Environment, failure: string, backupFile: string, deployDir: string, from: string): string {
  return (
    `${failure}\nthe database may be partly upgraded; the backup taken before is ${displayPath(backupFile)}: ` +
    `'brics-env restore ${env.name} ${displayPath(backupFile)} ${displayPath(deployDir)} --overwrite' brings it back ` +
    `(then up with an image of JupyterHub ${from})`
  );
}

/**
 * Backs the hub up (from `place`: the old hub while it still runs), lets `stopOldHub` stop it,
 * then runs `jupyterhub upgrade-db` with the new image and records the new version. A failure
 * names the backup and how to bring it back.
 */
export async function upgradeHubDatabase(
  env: Environment,
  deployDir: string,
  step: Extract<DatabaseStep, { kind: "upgrade" }>,
  place: HubPlace,
  stopOldHub: () => Promise<void>,
  out: Output,
): Promise<void> {
  out.say(`the hub's database was written by JupyterHub ${step.from} and the image has ${step.to}: backing it up, then upgrading it (jupyterhub upgrade-db)`);
  // Loaded here: only an upgrade needs the archive writer (and tar) on up's path.
  const { defaultBackupFile, writeBackup } = await import("./backup.js");
  const written = await writeBackup(env, deployDir, place, defaultBackupFile(env, deployDir, `before-upgrade-${step.from}-to-${step.to}`), { allowMissingConfigMap: true });
  out.say(`  backup: ${displayPath(written.file)} (0600; it holds the environment's secrets)`);
  await stopOldHub();
  try {
    await upgradeDatabase(imageRef("brics_jupyterhub", env.stage), volumeName("jupyterhub_root", env.name), step.to);
  } catch (err) {
    throw new Error(upgradeFailure(env, (err as Error).message, written.file, deployDir, step.from));
  }
  out.say(`  upgraded the hub's database from JupyterHub ${step.from} to ${step.to}`);
}
