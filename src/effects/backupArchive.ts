/**
 * Backup archives (plan/backup.ts says what is in them): a gzipped tar built and read in memory,
 * so the secrets in it never sit in a temporary directory. Written 0600 through a temp file in
 * the target's directory, never over an existing file.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import { readFile } from "node:fs/promises";
import { Header, Parser, type ReadEntry } from "tar";
import { writeFileAtomic } from "./deployDir.js";

const BLOCK = 512;

/** A ustar stream of regular files (mode 0600, owner 0:0), ending with the two zero blocks. */
export function tarOf(entries: ReadonlyArray<{ path: string; data: Buffer }>, mtime: Date): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const header = new Header({ path: e.path, mode: 0o600, uid: 0, gid: 0, size: e.data.length, mtime, type: "File", uname: "", gname: "" });
    const block = Buffer.alloc(BLOCK);
    if (header.encode(block, 0)) throw new Error(`backup entry name ${e.path} is too long for a tar header`);
    parts.push(block, e.data, Buffer.alloc((BLOCK - (e.data.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

export async function writeBackupArchive(file: string, entries: ReadonlyArray<{ path: string; data: Buffer }>, mtime: Date): Promise<void> {
  await writeFileAtomic(file, gzipSync(tarOf(entries, mtime)), { mode: 0o600 });
}

export class ArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ArchiveError";
  }
}

/** The regular files of a tar (gzipped or not), by path; anything else in it is an error. */
export async function readTarEntries(data: Buffer): Promise<Map<string, Buffer>> {
  let tar: Buffer;
  try {
    tar = data[0] === 0x1f && data[1] === 0x8b ? gunzipSync(data) : data;
  } catch (err) {
    throw new ArchiveError(`it is not a readable gzip file (${(err as Error).message})`);
  }
  const entries = new Map<string, Buffer>();
  const problems: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({
      strict: true,
      onReadEntry: (entry: ReadEntry) => {
        if (entry.type !== "File") {
          problems.push(`${entry.path} is a ${entry.type}, not a file`);
          entry.resume();
          return;
        }
        const chunks: Buffer[] = [];
        entry.on("data", (c: Buffer) => chunks.push(c));
        entry.on("end", () => {
          if (entries.has(entry.path)) problems.push(`${entry.path} is in the archive twice`);
          entries.set(entry.path, Buffer.concat(chunks));
        });
      },
    });
    parser.on("error", (e: Error) => reject(new ArchiveError(`it is not a readable tar archive (${e.message})`)));
    parser.on("end", () => resolve());
    parser.end(tar);
  });
  if (problems.length > 0) throw new ArchiveError(problems.join("; "));
  return entries;
}

export async function readBackupArchive(file: string): Promise<Map<string, Buffer>> {
  return readTarEntries(await readFile(file));
}
