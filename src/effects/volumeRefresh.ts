/**
 * Bringing the part of an existing volume that the repository owns (the hub's /etc/jupyterhub:
 * jupyterhub_config.py and the brics_hub module) in line with the package's tree, without touching
 * anything else on the volume (the hub's database, keys, logs). Compared through the volume's mount
 * point on this host; written with `podman volume import` of just the files that differ (so owners
 * come out right under rootless podman too), and files the package no longer has removed.
 */
import { existsSync } from "node:fs";
import { chmod, chown, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import { volumeImport } from "./podman.js";
import { PLACEHOLDER_FILES } from "../plan/volumes.js";
import type { Owner } from "./volumeArchive.js";

export interface TreeDifference {
  /** Paths relative to the volume root that are new or changed in the package, sorted. */
  readonly changed: readonly string[];
  /** Paths relative to the volume root under the compared prefix that the package does not have. */
  readonly removed: readonly string[];
}

async function filesUnder(root: string, rel: string): Promise<string[]> {
  const here = join(root, rel);
  if (!existsSync(here)) return [];
  const out: string[] = [];
  for (const entry of await readdir(here, { withFileTypes: true })) {
    const path = posix.join(rel, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(root, path)));
    else out.push(path);
  }
  return out;
}

/**
 * How the volume mounted at `mountpoint` differs from `files` (paths relative to `sourceRoot`, the
 * volume's tree in the package) under `prefix`. Contents are compared, not times or modes.
 */
export async function treeDifference(sourceRoot: string, files: readonly string[], mountpoint: string, prefix: string): Promise<TreeDifference> {
  const wanted = files.filter((f) => f.startsWith(`${prefix}/`) && !PLACEHOLDER_FILES.has(posix.basename(f)));
  const changed: string[] = [];
  for (const f of wanted) {
    const [want, have] = await Promise.all([readFile(join(sourceRoot, f)), readFile(join(mountpoint, f)).catch(() => undefined)]);
    if (have === undefined || !have.equals(want)) changed.push(f);
  }
  const known = new Set(wanted);
  const removed = (await filesUnder(mountpoint, prefix)).filter((f) => !known.has(f));
  return { changed: changed.sort(), removed: removed.sort() };
}

/** Writes the changed files into the volume (owned by `owner`) and removes the others. */
export async function applyTreeDifference(volume: string, sourceRoot: string, owner: Owner, mountpoint: string, diff: TreeDifference): Promise<void> {
  if (diff.changed.length > 0) {
    // Loaded here: an unchanged environment's up never needs the tar writer.
    const { volumeTarStream } = await import("./volumeArchive.js");
    await volumeImport(volume, volumeTarStream(sourceRoot, owner, diff.changed));
  }
  for (const f of diff.removed) await rm(join(mountpoint, f), { force: true });
}

/**
 * Replaces a small file on a volume through its mount point, atomically, with the owner and mode
 * the file (or else its directory) has. False, with nothing changed, where this host may not give
 * it that owner (rootless podman's mapped ids): the caller's write was only worth saving time.
 */
export async function replaceFileKeepingOwner(path: string, content: string): Promise<boolean> {
  const like = await stat(path).catch(() => stat(dirname(path)));
  const tmp = join(dirname(path), `.${basename(path)}.brics-env-${process.pid}`);
  try {
    await writeFile(tmp, content, { mode: 0o600, flag: "wx" });
    await chown(tmp, like.uid, like.gid);
    await chmod(tmp, like.isDirectory() ? 0o644 : like.mode & 0o777);
    await rename(tmp, path);
    return true;
  } catch {
    await rm(tmp, { force: true });
    return false;
  }
}
