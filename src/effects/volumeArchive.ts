/**
 * Tar archives of volume trees, made in TypeScript so the result is the same with GNU and BSD tar
 * (the spec's scripts needed different flags for each to set owners).
 */
import { lstat, readFile } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import { Readable } from "node:stream";
import { create, type WriteEntry } from "tar";
import { PLACEHOLDER_FILES, TRACKED_FILES_LIST, trackedFilesOf, type VolumePlan } from "../plan/volumes.js";

export interface Owner {
  readonly uid: number;
  readonly gid: number;
  readonly uname?: string;
  readonly gname?: string;
}

/**
 * The files of a volume's source tree under `packageRoot` that go into it (TRACKED_FILES_LIST),
 * relative to the tree. A listed file that is missing is an error naming it: a volume without it
 * would be broken in ways found much later.
 */
export async function trackedVolumeFiles(packageRoot: string, plan: VolumePlan): Promise<string[]> {
  const files = trackedFilesOf(await readFile(join(packageRoot, TRACKED_FILES_LIST), "utf8"), plan.kind);
  await Promise.all(
    files.map(async (f) => {
      const path = `${plan.sourceDir}/${f}`;
      await lstat(join(packageRoot, path)).catch(() => {
        throw new Error(`${path} is listed in ${TRACKED_FILES_LIST} but missing; the package is incomplete (reinstall it, or restore the file)`);
      });
    }),
  );
  return files;
}

/**
 * A tar stream of `files` under `root` (paths relative to it) and the directories that hold them,
 * with their modes and times, every entry owned by `owner`; placeholder files are left out, their
 * directories kept. Nothing else under `root` goes in.
 */
export function volumeTarStream(root: string, owner: Owner, files: readonly string[]): Readable {
  const wanted = new Set<string>(["."]);
  for (const file of files) {
    for (let p = posix.normalize(file).replace(/\/$/, ""); p !== "." && p !== "/" && !wanted.has(p); p = dirname(p)) wanted.add(p);
  }
  const pack = create(
    {
      cwd: root,
      portable: false,
      // tar names entries "./<path>"; a directory not wanted is not walked at all.
      filter: (path: string) => wanted.has(path.replace(/^\.\//, "")) && !PLACEHOLDER_FILES.has(basename(path)),
      onWriteEntry: (entry: WriteEntry) => setOwner(entry, owner),
    },
    ["."],
  );
  return Readable.from(pack as AsyncIterable<Buffer>);
}

/**
 * tar builds each header from the entry's stat right after this hook, and names only the owner
 * that matches the running user; so set the stat's ids, and fill in the names as the header is
 * assigned (before it is encoded).
 */
function setOwner(entry: WriteEntry, owner: Owner): void {
  const stat = entry.stat as { uid: number; gid: number } | undefined;
  if (stat !== undefined) {
    stat.uid = owner.uid;
    stat.gid = owner.gid;
  }
  let header: unknown;
  Object.defineProperty(entry, "header", {
    configurable: true,
    enumerable: true,
    get: () => header,
    set: (h: { uname?: string; gname?: string } | undefined) => {
      if (h !== undefined) {
        h.uname = owner.uname ?? "";
        h.gname = owner.gname ?? "";
      }
      header = h;
    },
  });
}
