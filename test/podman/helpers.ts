/**
 * Shared set-up for the podman tier: unique names, and a tiny base image made offline from the
 * host's static busybox (no registry is reachable in CI).
 */
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "tar";
import { run } from "../../src/effects/exec.js";

export const BUSYBOX = "/bin/busybox";

/** A short unique tag for podman objects made by one test run. */
export function uniqueId(prefix: string): string {
  return `${prefix}${process.pid.toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
}

export function busyboxMissingReason(): string | undefined {
  return existsSync(BUSYBOX) ? undefined : `${BUSYBOX} missing (apt-get install busybox-static)`;
}

const APPLETS = ["sh", "ls", "cat", "sleep", "stat", "id", "echo", "find", "wget", "httpd", "mkdir", "chmod", "test", "true", "env", "tail"];

/**
 * Imports a minimal image: static busybox, a passwd/group with root and slurm (64030), PATH set.
 */
export async function makeBusyboxImage(ref: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "brics-env-test-rootfs-"));
  try {
    for (const d of ["bin", "etc", "tmp", "root", "var/log", "srv", "www"]) await mkdir(join(dir, d), { recursive: true });
    await copyFile(BUSYBOX, join(dir, "bin", "busybox"));
    await chmod(join(dir, "bin", "busybox"), 0o755);
    for (const a of APPLETS) await symlink("busybox", join(dir, "bin", a));
    await writeFile(join(dir, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nslurm:x:64030:64030:slurm:/tmp:/bin/sh\n");
    await writeFile(join(dir, "etc", "group"), "root:x:0:\nslurm:x:64030:\n");
    const tarFile = join(dir, "..", `${dir.split("/").pop()}.tar`);
    await create({ cwd: dir, file: tarFile, portable: true }, ["."]);
    await run("podman", ["import", "--change", "ENV PATH=/bin", "--change", 'CMD ["/bin/sh"]', tarFile, ref], { timeoutMs: 120_000 });
    await rm(tarFile, { force: true });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function removeImage(ref: string): Promise<void> {
  await run("podman", ["rmi", "--force", ref]).catch(() => undefined);
}

/** Names of podman objects whose name contains `id` (to prove a test left nothing behind). */
export async function leftovers(id: string): Promise<string[]> {
  const out: string[] = [];
  const list = async (args: string[], kind: string) => {
    const { stdout } = await run("podman", args);
    for (const n of stdout.split("\n")) if (n.includes(id)) out.push(`${kind} ${n}`);
  };
  await list(["pod", "ps", "--format", "{{.Name}}"], "pod");
  await list(["ps", "--all", "--format", "{{.Names}}"], "container");
  await list(["volume", "ls", "--format", "{{.Name}}"], "volume");
  await list(["secret", "ls", "--format", "{{.Name}}"], "secret");
  return out;
}
