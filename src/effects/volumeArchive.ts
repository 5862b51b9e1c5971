/**
 * Tar archives of volume trees, made in TypeScript so the result is the same with GNU and BSD tar
 * (the spec's scripts needed different flags for each to set owners).
 */
import { basename } from "node:path";
import { Readable } from "node:stream";
import { create, type WriteEntry } from "tar";

export interface Owner {
  readonly uid: number;
  readonly gid: number;
  readonly uname?: string;
  readonly gname?: string;
}

/** Files that exist only so git keeps an empty directory; they do not belong in a volume. */
export const PLACEHOLDER_FILES = new Set([".gitkeep"]);

/**
 * A tar stream of everything under `root` (paths relative to it, modes and mtimes kept, placeholder
 * files left out), every entry owned by `owner`.
 */
export function volumeTarStream(root: string, owner: Owner): Readable {
  const pack = create(
    {
      cwd: root,
      portable: false,
      filter: (path: string) => !PLACEHOLDER_FILES.has(basename(path)),
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
