/**
 * `npm run bench`: how fast brics-env is, as ratios to what it cannot beat, measured in one run
 * with the commands taking turns (several rounds, medians), so a machine's drift hits both sides
 * of a ratio alike. It prints; it never asserts (docs/performance.md has the targets and numbers).
 *
 *   node dist/scripts/bench.js [startup|podman|all] [--rounds N]
 *
 * startup: whole-process times of `list`, `--help`, `check` and `manifest` against `node -e 0`.
 * podman:  warm `up` of an unchanged dev_dummyauth (pod absent, volumes and images present)
 *          against its floor — `podman kube play` of the manifest `up` played plus polling
 *          /hub/health until 200 — and the no-op `resources` and `down` (with podman's own share).
 *          It needs podman to itself (nothing of dev_dummyauth, port 8000 free): on a shared
 *          machine hold your podman lock while it runs. It works in a copy of the package, as the
 *          stack tests do, with the offline base images (`bootstrap-bases`, cached when present;
 *          building them needs mmdebstrap and a Debian mirror) and the Python stand-ins, and
 *          leaves the images localhost/brics_{jupyterhub,slurm}:dev-latest built.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseDocument } from "yaml";
import { BASES } from "../src/plan/bootstrapBases.js";
import { findExecutable } from "../src/effects/exec.js";
import { getStatus, healthUrl } from "../src/effects/hubHealth.js";
import { getEnvironment } from "../src/plan/environments.js";
import { podName } from "../src/plan/names.js";
import { volumesOf } from "../src/plan/volumes.js";
import { repoRoot } from "../src/paths.js";
import { makeWorkspace, type Workspace } from "../test/stack/workspace.js";

const ENV = "dev_dummyauth";
const POD = podName(ENV);
const cli = join(repoRoot(), "dist", "src", "cli.js");

interface Timed {
  readonly ms: number;
  readonly code: number | null;
  readonly output: string;
}

/** Runs a command to its end; the time is the whole process, from spawn to exit. */
function timed(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, cwd?: string): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, [...args], { env, stdio: ["ignore", "pipe", "pipe"], ...(cwd !== undefined ? { cwd } : {}) });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.stderr.on("data", (c: Buffer) => chunks.push(c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ ms: performance.now() - started, code, output: Buffer.concat(chunks).toString("utf8") }));
  });
}

async function mustRun(what: string, file: string, args: readonly string[], env?: NodeJS.ProcessEnv, cwd?: string): Promise<Timed> {
  const r = await timed(file, args, env, cwd);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.output.trimEnd()}`);
  return r;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const fmtMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

function printTable(rows: ReadonlyArray<readonly string[]>): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(`  ${r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()}`);
}

// ---------------------------------------------------------------------------------------------
// Start-up

async function startup(rounds: number): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "brics-env-bench-"));
  try {
    const dir = join(work, ENV);
    // A cache directory of the bench's own: the warm-up rounds leave each command's code cache
    // there (src/launcher.ts), as a user's first runs do, whatever the user's cache holds.
    const env = { ...process.env, XDG_CACHE_HOME: join(work, "cache") };
    await mustRun("brics-env init", process.execPath, [cli, "init", ENV, dir], env);
    await mustRun("brics-env manifest", process.execPath, [cli, "manifest", ENV, dir], env);
    const base = ["node -e 0", process.execPath, ["-e", "0"]] as const;
    const commands: ReadonlyArray<readonly [string, readonly string[], number]> = [
      ["list", [cli, "list"], 1.5],
      ["--help", [cli, "--help"], 1.5],
      ["check", [cli, "check", ENV, dir], 2],
      ["manifest", [cli, "manifest", ENV, dir], 2],
    ];
    const times = new Map<string, number[]>([[base[0], []], ...commands.map(([n]) => [n, []] as [string, number[]])]);
    const ratios = new Map<string, number[]>(commands.map(([n]) => [n, []]));
    for (let round = -2; round < rounds; round++) {
      // Each round: the baseline, then every command, each followed by the baseline again, so
      // each command's ratio is taken against a baseline run next to it.
      let previous = (await mustRun(base[0], base[1], base[2])).ms;
      if (round >= 0) times.get(base[0])!.push(previous);
      for (const [name, args] of commands) {
        const r = await mustRun(`brics-env ${name}`, process.execPath, args, env);
        const after = (await mustRun(base[0], base[1], base[2])).ms;
        if (round >= 0) {
          times.get(name)!.push(r.ms);
          times.get(base[0])!.push(after);
          ratios.get(name)!.push(r.ms / ((previous + after) / 2));
        }
        previous = after;
      }
    }
    console.log(`start-up, ${rounds} interleaved rounds (after 2 warm-up rounds, which leave the code cache), medians of whole-process wall time:`);
    const rows: string[][] = [["command", "median", "ratio to node -e 0", "target"]];
    rows.push([base[0], fmtMs(median(times.get(base[0])!)), "1.00", ""]);
    for (const [name, , target] of commands) {
      rows.push([name, fmtMs(median(times.get(name)!)), median(ratios.get(name)!).toFixed(2), `<= ${target}`]);
    }
    printTable(rows);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// podman: warm up against its floor, no-op resources, down

async function podmanAnswers(args: readonly string[]): Promise<boolean> {
  return (await timed("podman", args)).code === 0;
}

/** Why the podman part cannot run here, or undefined. */
async function podmanBlocker(): Promise<string | undefined> {
  if ((await findExecutable("podman")) === undefined) return "podman is not installed";
  if (!(await podmanAnswers(["info"]))) return "podman does not answer `podman info`";
  const theirs: string[] = [];
  if (await podmanAnswers(["pod", "exists", POD])) theirs.push(`pod ${POD}`);
  for (const v of volumesOf(getEnvironment(ENV))) if (await podmanAnswers(["volume", "exists", v.name])) theirs.push(`volume ${v.name}`);
  if (theirs.length > 0) return `${theirs.join(", ")} exist already and are not the bench's to touch (brics-env down ${ENV} --force removes them)`;
  const busy = await fetch("http://127.0.0.1:8000/", { signal: AbortSignal.timeout(2000) }).then(() => true, () => false);
  if (busy) return "port 8000 is taken";
  return undefined;
}

async function waitHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // The same request as up's (a lighter one than fetch), so neither side's polling slows the
    // hub more than the other's.
    const ok = await getStatus(url, 2000).then((status) => status === 200, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs / 1000} s`);
    await sleep(50);
  }
}

async function podmanPart(rounds: number): Promise<void> {
  const blocker = await podmanBlocker();
  if (blocker !== undefined) {
    console.log(`\npodman part skipped: ${blocker}.`);
    return;
  }
  let ws: Workspace | undefined;
  let played = false;
  const brics = (what: string, args: string[]) => mustRun(`brics-env ${what}`, process.execPath, [ws!.cli, ...args], ws!.env, ws!.dir);
  const teardown = async () => {
    if (ws === undefined) return;
    if (played) await timed(process.execPath, [ws.cli, "down", ENV, ws.deployDir, "--force"], ws.env);
    ws.remove();
    ws = undefined;
  };
  const onSignal = () => void teardown().finally(() => process.exit(130));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    ws = await makeWorkspace();
    console.log(`\npodman part: workspace ${ws.dir}`);
    const bases = await timed(process.execPath, [ws.cli, "bootstrap-bases"], ws.env, ws.dir);
    if (bases.code !== 0) {
      console.log(
        "podman part skipped: the offline base images are missing and `brics-env bootstrap-bases` could not build them " +
          `(it needs mmdebstrap and a reachable Debian mirror):\n${bases.output.trimEnd()}`,
      );
      return;
    }
    for (const b of BASES) ws.env[b.envVar] = b.image;
    await brics("init", ["init", ENV, ws.deployDir]);
    played = true;
    const first = await brics("up (first: builds and labels the images, creates the volumes)", ["up", ENV, ws.deployDir]);
    console.log(`  first up (images built or relabelled, volumes created): ${fmtMs(first.ms)}`);
    await brics("down", ["down", ENV, ws.deployDir]);

    const config = parseDocument(await readFile(join(ws.deployDir, "deploy-configmap.yaml"), "utf8")).toJS() as { data: Record<string, string> };
    const url = healthUrl(config.data["baseUrl"] ?? "/");
    const configMap = join(ws.deployDir, "deploy-configmap.yaml");
    const adapted = join(ws.deployDir, ".podman-play", "play.yaml");

    const up: number[] = [];
    const floor: number[] = [];
    const upRatio: number[] = [];
    const resources: number[] = [];
    const down: number[] = [];
    const downPodman: number[] = [];
    const podRm: number[] = [];
    for (let round = 0; round < rounds; round++) {
      // up of the unchanged environment: pod absent, volumes and images there.
      const u = await brics("up", ["up", ENV, ws.deployDir]);
      up.push(u.ms);
      podRm.push((await mustRun("podman pod rm", "podman", ["pod", "rm", "--force", POD])).ms);

      // Its floor: podman playing what up played (the adapted copy on podman < 4.4, whose
      // Secret files up left in place), then the hub's start, polled every 50 ms.
      const manifest = existsSync(adapted) ? adapted : join(ws.deployDir, "combined.yaml");
      if (manifest !== adapted) {
        const secrets = (await mustRun("podman secret ls", "podman", ["secret", "ls", "--format", "{{.Name}}"])).output.split("\n").filter((s) => s.endsWith(`-${ENV}`));
        if (secrets.length > 0) await mustRun("podman secret rm", "podman", ["secret", "rm", ...secrets]);
      }
      const t0 = performance.now();
      await mustRun("podman kube play", "podman", ["kube", "play", "--configmap", configMap, manifest]);
      await waitHealthy(url, 300_000);
      floor.push(performance.now() - t0);
      upRatio.push(u.ms / floor[floor.length - 1]!);

      const d = await brics("down", ["down", ENV, ws.deployDir]);
      down.push(d.ms);
      const share = /podman pod rm took ([0-9.]+) s/.exec(d.output);
      if (share !== null) downPodman.push(Number(share[1]) * 1000);

      resources.push((await brics("resources", ["resources", ENV])).ms);
      process.stdout.write(`  round ${round + 1}/${rounds}: up ${fmtMs(u.ms)}, floor ${fmtMs(floor[floor.length - 1]!)}, down ${fmtMs(d.ms)}, resources ${fmtMs(resources[resources.length - 1]!)}\n`);
    }
    console.log(`podman, ${rounds} interleaved rounds, medians:`);
    printTable([
      ["measure", "median", "ratio", "target"],
      ["up (warm, unchanged)", fmtMs(median(up)), (median(upRatio)).toFixed(2), "<= 1.15 x floor"],
      ["floor: kube play + /hub/health 200", fmtMs(median(floor)), "1.00", ""],
      ["resources (nothing changed)", fmtMs(median(resources)), "", "<= 0.5 s"],
      ["down", fmtMs(median(down)), "", ""],
      ["  of which podman pod rm (down's report)", downPodman.length > 0 ? fmtMs(median(downPodman)) : "n/a", downPodman.length > 0 ? (median(downPodman) / median(down)).toFixed(2) : "", "podman's share"],
      ["bare podman pod rm --force", fmtMs(median(podRm)), "", ""],
    ]);
  } finally {
    await teardown();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const roundsAt = args.indexOf("--rounds");
  const roundsArg = roundsAt >= 0 ? Number(args[roundsAt + 1]) : undefined;
  const part = args.find((a, i) => !a.startsWith("-") && (roundsAt < 0 || i !== roundsAt + 1)) ?? "all";
  if (!["startup", "podman", "all"].includes(part)) throw new Error(`unknown part '${part}': startup, podman or all`);
  console.log(`node ${process.version}, ${(await import("node:os")).cpus().length} CPUs`);
  if (part !== "podman") await startup(roundsArg ?? 15);
  if (part !== "startup") await podmanPart(roundsArg ?? 3);
}

await main();
