/** SSH key pairs, made and checked with OpenSSH's ssh-keygen. */
import { existsSync } from "node:fs";
import { chmod, link, mkdtemp, readFile, rm, stat, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { findExecutable, run } from "./exec.js";

async function sshKeygen(): Promise<string> {
  const found = await findExecutable("ssh-keygen");
  if (found === undefined) {
    throw new Error("ssh-keygen not found on PATH; install OpenSSH (Debian/Ubuntu: apt-get install openssh-client)");
  }
  return found;
}

/** The public key of a private key file, as `<type> <base64>` (ssh-keygen -y). */
export async function derivePublicKey(privateKeyFile: string): Promise<string> {
  const { stdout } = await run(await sshKeygen(), ["-y", "-f", privateKeyFile], { timeoutMs: 30_000 });
  return stdout.trim();
}

function keyFields(line: string): string {
  return line.trim().split(/\s+/).slice(0, 2).join(" ");
}

export type KeyPairOutcome = { kind: "generated" | "kept"; privateFile: string; publicFile: string };

/**
 * A key pair being made lives in a work directory of this prefix beside its target until both
 * halves are linked into place: a reader that sees one tells half a pair from one in the making.
 */
export const KEYGEN_WORK_PREFIX = ".brics-env-keygen-";

/**
 * Makes a passwordless ed25519 pair at `privateFile` / `privateFile.pub` unless one is there.
 * An existing pair is kept after checking that its halves match (unless the caller says it has:
 * `halvesChecked`, as `manifest` does after validation); half a pair is an error, never silently
 * replaced, because the other half may already be authorised somewhere.
 */
export async function ensureKeyPair(
  privateFile: string,
  publicFile: string,
  comment: string,
  opts: { halvesChecked?: boolean } = {},
): Promise<KeyPairOutcome> {
  const havePriv = existsSync(privateFile);
  const havePub = existsSync(publicFile);
  if (havePriv && havePub) {
    if (opts.halvesChecked !== true) {
      const derived = await derivePublicKey(privateFile);
      const written = await readFile(publicFile, "utf8");
      if (keyFields(derived) !== keyFields(written)) {
        throw new Error(`${publicFile} is not the public half of ${privateFile}; remove both to generate a new pair, or restore the matching file`);
      }
    }
    const mode = (await stat(privateFile)).mode & 0o777;
    if ((mode & 0o077) !== 0) await chmod(privateFile, 0o600);
    return { kind: "kept", privateFile, publicFile };
  }
  if (havePriv !== havePub) {
    const [have, missing] = havePriv ? [privateFile, publicFile] : [publicFile, privateFile];
    throw new Error(
      `${have} exists but ${missing} does not; ` +
        (havePriv ? `recreate it with: ssh-keygen -y -f ${privateFile} > ${publicFile}` : `remove ${have} to generate a new pair`),
    );
  }
  // Generated beside the target (same file system), then linked into place: link(2) fails when the
  // name exists, so a key that appeared meanwhile is never replaced, unlike rename(2).
  const work = await mkdtemp(join(dirname(privateFile), KEYGEN_WORK_PREFIX));
  try {
    const tmpKey = join(work, "key");
    await run(await sshKeygen(), ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", tmpKey], { timeoutMs: 30_000 });
    await chmod(tmpKey, 0o600);
    await linkNew(tmpKey, privateFile);
    try {
      await linkNew(`${tmpKey}.pub`, publicFile);
    } catch (err) {
      // Our private half alone would be half a pair: take it back (it is ours, linked just now).
      await unlink(privateFile);
      throw err;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { kind: "generated", privateFile, publicFile };
}

async function linkNew(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      throw new Error(`${to} appeared while a new key pair was being made; it is kept, and the new pair is not used`);
    }
    throw err;
  }
}
