/**
 * Where a secret could leak while the hub drives Slurm: the command lines of every process (which
 * any user of the host can read in /proc/<pid>/cmdline) and the logs. A scanner runs in a container
 * for as long as a spawn takes and records every command line it sees.
 */
import assert from "node:assert/strict";
import { podman, sh } from "./podmanProbe.js";
import { until } from "./harness.js";

/** Records the distinct command lines of all processes, every few milliseconds, until the stop file exists. */
const SCANNER = `
import os, sys, time
out, stop = sys.argv[1], sys.argv[2]
seen, scans = set(), 0
while not os.path.exists(stop):
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    seen.add(f.read())
            except OSError:
                pass
    scans += 1
    time.sleep(0.003)
with open(out + ".tmp", "wb") as f:
    for cmdline in sorted(seen):
        f.write(cmdline.replace(b"\\0", b" ").strip() + b"\\n")
os.rename(out + ".tmp", out)
print(scans, file=open(out + ".scans", "w"))
`;

const OUT = "/tmp/brics-env-stack-cmdlines";
const STOP = "/tmp/brics-env-stack-cmdlines.stop";

export interface CmdlineScan {
  /** Stops the scanner; the distinct command lines it saw, one per entry (NULs as spaces). */
  stop(): Promise<string[]>;
}

export async function startCmdlineScan(container: string): Promise<CmdlineScan> {
  await sh(container, `rm -f ${OUT} ${OUT}.scans ${STOP}`);
  const r = await podman(["exec", "-d", container, "python3", "-c", SCANNER, OUT, STOP]);
  assert.equal(r.code, 0, `starting the command line scanner in ${container}: ${r.err}`);
  return {
    async stop() {
      await sh(container, `touch ${STOP}`);
      await until(`the command line scanner in ${container} to finish`, 30, async () => {
        const done = await podman(["exec", container, "test", "-e", `${OUT}.scans`]);
        return done.code === 0 ? true : undefined;
      }, 200);
      const scans = Number((await sh(container, `cat ${OUT}.scans`)).trim());
      assert.ok(scans > 10, `the scanner in ${container} looked often enough (${scans} scans)`);
      return (await sh(container, `cat ${OUT}`)).split("\n").filter((l) => l !== "");
    },
  };
}

/**
 * The Hub API token of the running user server, from its job's environment on the Slurm side
 * (JupyterHub keeps only a hash of it).
 */
export async function tokenOfRunningJob(slurmContainer: string): Promise<string> {
  const out = await sh(
    slurmContainer,
    `python3 -c '
import os
for pid in os.listdir("/proc"):
    try:
        env = open(f"/proc/{pid}/environ", "rb").read().split(b"\\0")
    except OSError:
        continue
    for entry in env:
        if entry.startswith(b"JUPYTERHUB_API_TOKEN="):
            print(entry.split(b"=", 1)[1].decode())
            raise SystemExit
'`,
  );
  const token = out.trim();
  assert.ok(token.length >= 16, `found the job's API token (${token.length} characters)`);
  return token;
}
