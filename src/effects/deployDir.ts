/** Reading and writing the deploy directory: atomic writes, never overwriting unless asked. */
import { existsSync } from "node:fs";
import { chmod, link, mkdir, open, readFile, rename, rm, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { deployFilesFor } from "../plan/deployFiles.js";
import type { Environment } from "../plan/environments.js";
import { DEPLOY_CONFIGMAP_FILE } from "../plan/names.js";
import { parsePrivateKey } from "../plan/sshFormats.js";
import type { DeployDirInput } from "../plan/validate.js";
import { derivePublicKey } from "./sshKeys.js";

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "EISDIR") return undefined;
    throw err;
  }
}

/**
 * Everything validateDeployDir needs: the ConfigMap text, the other files the environment uses,
 * and, for each private key whose file does not carry its public half (PEM keys; OpenSSH keys do),
 * that half as `ssh-keygen -y` derives it (a key ssh-keygen cannot read is left out; validation
 * reports it from the text). Files are read concurrently.
 */
export async function readDeployDir(env: Environment, dir: string): Promise<DeployDirInput> {
  const wanted = deployFilesFor(env).filter((f) => f.kind !== "configmap" && f.kind !== "manifest");
  const [configMapText, ...texts] = await Promise.all([
    readIfPresent(join(dir, DEPLOY_CONFIGMAP_FILE)),
    ...wanted.map((f) => readIfPresent(join(dir, f.name))),
  ]);
  const files: Record<string, string | undefined> = {};
  wanted.forEach((f, i) => (files[f.name] = texts[i]));
  const derivedPublicKeys: Record<string, string> = {};
  await Promise.all(
    wanted.map(async (f) => {
      const text = files[f.name];
      if (f.kind !== "ssh-private-key" || text === undefined) return;
      const parsed = parsePrivateKey(text);
      if (!parsed.ok || parsed.value.publicKey !== undefined) return;
      try {
        derivedPublicKeys[f.name] = await derivePublicKey(join(dir, f.name));
      } catch {
        // unreadable or passphrase-protected: validation says so from the file's text
      }
    }),
  );
  return { dir, configMapText, files, derivedPublicKeys };
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

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}
