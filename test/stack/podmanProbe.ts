/**
 * What the stack test asks podman directly: state checks (does the pod, volume, Secret exist),
 * commands inside the containers, and the logs printed when a step fails. The product itself is
 * only ever driven through `brics-env`.
 */
import { execa } from "execa";

export async function podman(args: string[], timeoutMs = 120_000): Promise<{ code: number; out: string; err: string }> {
  const r = await execa("podman", args, { reject: false, timeout: timeoutMs, stdin: "ignore" });
  return { code: r.exitCode ?? -1, out: r.stdout, err: r.stderr };
}

/** Runs `sh -c script` in a container; throws with the output when it fails. */
export async function sh(container: string, script: string, timeoutMs = 60_000): Promise<string> {
  const r = await podman(["exec", container, "sh", "-c", script], timeoutMs);
  if (r.code !== 0) throw new Error(`in ${container}: ${script}\nexit ${r.code}\n${r.out}\n${r.err}`);
  return r.out;
}

export async function exists(kind: "pod" | "volume" | "secret" | "container", name: string): Promise<boolean> {
  if (kind === "secret") {
    const r = await podman(["secret", "inspect", name]);
    return r.code === 0;
  }
  return (await podman([kind, "exists", name])).code === 0;
}

export async function namesMatching(kind: "container" | "volume" | "secret" | "pod", needle: string): Promise<string[]> {
  const args: Record<typeof kind, string[]> = {
    container: ["ps", "-a", "--format", "{{.Names}}"],
    volume: ["volume", "ls", "--format", "{{.Name}}"],
    secret: ["secret", "ls", "--format", "{{.Name}}"],
    pod: ["pod", "ps", "--format", "{{.Name}}"],
  };
  const r = await podman(args[kind]);
  return r.out
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => s !== "" && s.includes(needle));
}

/** Jobs in the Slurm container's queue: id, state, user. */
export async function slurmJobs(container: string): Promise<{ id: string; state: string; user: string }[]> {
  const out = await sh(container, "squeue -h -o '%i|%T|%u'");
  return out
    .split("\n")
    .filter((l) => l.includes("|"))
    .map((l) => {
      const [id = "", state = "", user = ""] = l.trim().split("|");
      return { id, state, user };
    });
}

/** Everything that helps explain a failure, best effort: containers may be gone already. */
export async function collectLogs(hub: string, slurm: string): Promise<string> {
  const parts: string[] = [];
  const grab = async (title: string, args: string[]) => {
    const r = await podman(args, 30_000);
    parts.push(`----- ${title} (exit ${r.code}) -----\n${r.out}\n${r.err}`.trimEnd());
  };
  await grab("pod status", ["pod", "ps", "--ctr-names", "--ctr-status"]);
  // The hub's own log, without the polling requests the test makes while it waits.
  await grab("hub log", [
    "exec",
    hub,
    "sh",
    "-c",
    "grep -v -E '(424|302|200) GET /(hub/)?user/[^ ]*/(api/status|files/)|Failing suspected API request' " +
      "/var/log/jupyterhub/jupyterhub.log | tail -n 400",
  ]);
  await grab("hub container log (tail)", ["logs", "--tail", "40", hub]);
  await grab("slurm container log", ["logs", "--tail", "100", slurm]);
  await grab("sshd log", ["exec", slurm, "tail", "-n", "200", "/var/log/sshd.log"]);
  await grab("slurmctld log", ["exec", slurm, "tail", "-n", "200", "/var/log/slurmctld.log"]);
  await grab("slurmd log", ["exec", slurm, "tail", "-n", "200", "/var/log/slurmd.log"]);
  await grab("queue", ["exec", slurm, "sh", "-c", "squeue; sinfo -N -l"]);
  await grab("job logs", [
    "exec",
    slurm,
    "sh",
    "-c",
    "for f in /home/*/*/jupyterhub_slurmspawner_*.log; do [ -e \"$f\" ] && { echo \"== $f\"; tail -n 100 \"$f\"; }; done; true",
  ]);
  return parts.join("\n");
}
