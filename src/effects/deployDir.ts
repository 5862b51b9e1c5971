/** Reading and writing the deploy directory: atomic writes, never overwriting unless asked. */
import { isUtf8 } from "node:buffer";
import { constants, existsSync, type Stats } from "node:fs";
import { chmod, link, lstat, mkdir, open, readdir, readFile, realpath, rename, rm, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, isAbsolute, join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { deployFilesFor } from "../plan/deployFiles.js";
import type { Environment } from "../plan/environments.js";
import { DEPLOY_CONFIGMAP_FILE, MAX_OBJECT_BYTES } from "../plan/names.js";
import { parsePrivateKey } from "../plan/sshFormats.js";
import type { DeployDirInput, Unreadable } from "../plan/validate.js";
import { derivePublicKey, KEYGEN_WORK_PREFIX } from "./sshKeys.js";

export interface ReadOptions {
  /** Follow symbolic links that lead out of the deploy directory (default: refuse them). */
  readonly followOutsideLinks?: boolean;
}

type FileRead = { kind: "missing" } | { kind: "unreadable"; why: Unreadable } | { kind: "text"; text: string; mode: number };

function notRegular(st: Stats): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a named pipe (FIFO)";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/** 1-based line of the first byte that is not part of valid UTF-8. */
function firstBadUtf8Line(buf: Buffer): number {
  let line = 1;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === 0x0a) line++;
    if (buf[i]! < 0x80) continue;
    // The shortest prefix that does not decode is where it breaks.
    for (let n = 1; n <= 4; n++) {
      if (i + n > buf.length) return line;
      if (isUtf8(buf.subarray(i, i + n))) {
        i += n - 1;
        break;
      }
      if (n === 4) return line;
    }
  }
  return line;
}

/**
 * Reads one file of the deploy directory as text, but only a regular file, inside the directory
 * (or reached through a link the user allowed), no larger than Kubernetes accepts in one object,
 * and valid UTF-8. Anything else is reported, never read: a FIFO would block the read forever, a
 * device would feed it without end. The file is opened without following links and checked to be
 * the one that was looked at, so it cannot be swapped in between.
 */
async function readDeployFile(realDir: string, name: string, opts: ReadOptions): Promise<FileRead> {
  const path = join(realDir, name);
  let st: Stats;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    throw err;
  }
  let target = path;
  if (st.isSymbolicLink()) {
    try {
      target = await realpath(path);
    } catch {
      return { kind: "unreadable", why: { kind: "dangling-link" } };
    }
    const rel = relative(realDir, target);
    if ((rel.startsWith("..") || isAbsolute(rel)) && opts.followOutsideLinks !== true) {
      return { kind: "unreadable", why: { kind: "link-outside", target } };
    }
    st = await stat(target);
  }
  const what = notRegular(st);
  if (what !== undefined) return { kind: "unreadable", why: { kind: "not-regular", what } };
  if (st.size > MAX_OBJECT_BYTES) return { kind: "unreadable", why: { kind: "too-large", size: st.size } };
  const fh = await open(target, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const opened = await fh.stat();
    if (opened.ino !== st.ino || opened.dev !== st.dev || !opened.isFile()) {
      return { kind: "unreadable", why: { kind: "not-regular", what: "replaced while it was being read" } };
    }
    // Read to the end, but never past the limit: the file may have grown since it was looked at.
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.max(opened.size - length, 0) + 4096);
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, length);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      length += bytesRead;
      if (length > MAX_OBJECT_BYTES) return { kind: "unreadable", why: { kind: "too-large", size: length } };
    }
    const bytes = Buffer.concat(chunks, length);
    if (!isUtf8(bytes)) return { kind: "unreadable", why: { kind: "not-utf8", line: firstBadUtf8Line(bytes) } };
    return { kind: "text", text: bytes.toString("utf8"), mode: opened.mode & 0o7777 };
  } finally {
    await fh.close();
  }
}

/**
 * Everything validateDeployDir needs: the ConfigMap text, the other files the environment uses
 * (and why any of them could not be read, and their modes), and, for each private key whose file
 * does not carry its public half (PEM keys; OpenSSH keys do), that half as `ssh-keygen -y`
 * derives it (a key ssh-keygen cannot read is left out; validation reports it from the text).
 * Files are read concurrently.
 */
/** Whether another brics-env run is making a key pair in `dir` right now (ensureKeyPair). */
async function keyPairInTheMaking(dir: string): Promise<boolean> {
  return (await readdir(dir)).some((name) => name.startsWith(KEYGEN_WORK_PREFIX));
}

/** How long a read waits for another run's key pair before it reads the directory as it is. */
const KEYGEN_WAIT_MS = 5000;

/**
 * The deploy directory's files, as validation takes them. Another `manifest` may be linking a new
 * key pair into place, one half after the other: the files are read when no pair is in the
 * making, and read again when one was made meanwhile, so half a pair is only reported when it is
 * one. A work directory left by a killed run is waited for at most KEYGEN_WAIT_MS.
 */
export async function readDeployDir(env: Environment, dir: string, opts: ReadOptions = {}): Promise<DeployDirInput> {
  const realDir = await realpath(dir);
  const until = Date.now() + KEYGEN_WAIT_MS;
  for (;;) {
    while ((await keyPairInTheMaking(realDir)) && Date.now() < until) await sleep(20);
    const input = await readDeployFiles(env, dir, realDir, opts);
    if (!(await keyPairInTheMaking(realDir)) || Date.now() >= until) return input;
  }
}

async function readDeployFiles(env: Environment, dir: string, realDir: string, opts: ReadOptions): Promise<DeployDirInput> {
  const wanted = deployFilesFor(env).filter((f) => f.kind !== "configmap" && f.kind !== "manifest");
  const names = [DEPLOY_CONFIGMAP_FILE, ...wanted.map((f) => f.name)];
  const reads = await Promise.all(names.map((name) => readDeployFile(realDir, name, opts)));
  const files: Record<string, string | undefined> = {};
  const unreadable: Record<string, Unreadable> = {};
  const modes: Record<string, number> = {};
  names.forEach((name, i) => {
    const r = reads[i]!;
    if (r.kind === "unreadable") unreadable[name] = r.why;
    if (r.kind === "text") modes[name] = r.mode;
    if (name !== DEPLOY_CONFIGMAP_FILE) files[name] = r.kind === "text" ? r.text : undefined;
  });
  const configMapRead = reads[0]!;
  const configMapText = configMapRead.kind === "text" ? configMapRead.text : undefined;
  const derivedPublicKeys: Record<string, string> = {};
  await Promise.all(
    wanted.map(async (f) => {
      const text = files[f.name];
      if (f.kind !== "ssh-private-key" || text === undefined) return;
      const parsed = parsePrivateKey(text);
      if (!parsed.ok || parsed.value.publicKey !== undefined) return;
      try {
        derivedPublicKeys[f.name] = await derivePublicKey(join(realDir, f.name));
      } catch {
        // unreadable or passphrase-protected: validation says so from the file's text
      }
    }),
  );
  return { dir, configMapText, files, unreadable, modes, derivedPublicKeys };
}

export class FileExistsError extends Error {
  constructor(readonly path: string) {
    super(`${path} already exists; not overwriting it`);
    this.name = "FileExistsError";
  }
}

export interface WriteOptions {
  /** Replace an existing file (default: refuse). */
  readonly overwrite?: boolean;
  /** File mode; private keys and files holding passwords get 0600. */
  readonly mode?: number;
}

/**
 * Writes through a temp file in the same directory and renames it into place, so a reader never
 * sees half a file. Without overwrite, the final step is a hard link, which fails if the target
 * appeared meanwhile, so an existing file is never replaced even by a concurrent run.
 */
export async function writeFileAtomic(path: string, content: string | Buffer, opts: WriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  if (!opts.overwrite && existsSync(path)) throw new FileExistsError(path);
  const mode = opts.mode ?? 0o644;
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await chmod(tmp, mode);
    if (opts.overwrite) {
      await rename(tmp, path);
    } else {
      try {
        await link(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new FileExistsError(path);
        throw err;
      }
      await unlink(tmp);
    }
  } finally {
    await rm(tmp, { force: true });
  }
}

/** The lock file `manifest` holds in a deploy directory while it generates keys and writes. */
export const DEPLOY_LOCK_FILE = ".brics-env.lock";

const LOCK_POLL_MS = 50;
const LOCK_WAIT_MS = 120_000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Reads a lock file's `<pid> <host>`; undefined when it is gone. */
async function lockHolder(file: string): Promise<{ text: string; pid: number; host: string } | undefined> {
  try {
    const text = await readFile(file, "utf8");
    const [pid = "", host = ""] = text.trim().split(" ");
    return { text, pid: Number(pid), host };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Runs `work` holding the deploy directory's lock, so two runs of `manifest` (or `up`) on one
 * directory take turns. The lock is a file created exclusively, naming the holder's pid and host;
 * one left by a process of this host that no longer runs is taken over (renamed away first, so
 * only one waiter can take it). A holder on another host (a shared file system) is waited for,
 * then named in the error.
 */
export async function withDeployLock<T>(dir: string, work: () => Promise<T>, onWait: (holder: string) => void = () => undefined): Promise<T> {
  const file = join(dir, DEPLOY_LOCK_FILE);
  const mine = `${process.pid} ${hostname()}\n`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  let told = false;
  for (;;) {
    try {
      const fh = await open(file, "wx", 0o600);
      try {
        await fh.writeFile(mine);
      } finally {
        await fh.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = await lockHolder(file);
    if (holder === undefined) continue;
    if (holder.host === hostname() && Number.isInteger(holder.pid) && holder.pid > 0 && !processAlive(holder.pid)) {
      const stale = `${file}.stale-${process.pid}`;
      await rename(file, stale).catch(() => undefined);
      const moved = await lockHolder(stale);
      // Another waiter may have taken the stale lock over and made its own in between: put that back.
      if (moved !== undefined && moved.text !== holder.text) await link(stale, file).catch(() => undefined);
      await rm(stale, { force: true });
      continue;
    }
    const who = `pid ${holder.pid} on ${holder.host}`;
    if (Date.now() > deadline) {
      throw new Error(`${file} is held by another brics-env run (${who}); if it is not running any more, remove the file`);
    }
    if (!told) onWait(`waiting for another brics-env run (${who}), which holds ${file}`);
    told = true;
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
  try {
    return await work();
  } finally {
    if ((await lockHolder(file))?.text === mine) await rm(file, { force: true });
  }
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}
