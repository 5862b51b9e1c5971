/**
 * Runs the test tiers (unit, podman, stack), each only when the tools it needs are present,
 * and says which ran, which were skipped and why. BRICS_ENV_REQUIRE_TIERS=unit,podman,stack
 * turns a skip into a failure, so CI cannot go green on a tier that never ran.
 *
 *   node dist/test/run-tiers.js [tier ...]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { repoRoot } from "../src/paths.js";

type Tier = "unit" | "podman" | "stack";
const TIERS: readonly Tier[] = ["unit", "podman", "stack"];

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

interface TierResult {
  tier: Tier;
  outcome: "passed" | "failed" | "skipped";
  reason?: string;
  counts: Counts;
}

const root = repoRoot();

function commandWorks(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: "ignore", timeout: 60_000 });
  return r.status === 0;
}

function testFiles(dir: string): string[] {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs)
    .filter((f) => f.endsWith(".test.js"))
    .sort()
    .map((f) => join(abs, f));
}

/** Runs node's test runner with a human reporter on stdout and TAP to a file we count from. */
function runNodeTests(files: string[], serial: boolean): Counts {
  const scratch = mkdtempSync(join(tmpdir(), "brics-env-tap-"));
  const tap = join(scratch, "out.tap");
  const args = [
    "--test",
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    "--test-reporter=tap",
    `--test-reporter-destination=${tap}`,
  ];
  // Tiers that share podman state run one file at a time.
  if (serial) args.push("--test-concurrency=1");
  const r = spawnSync(process.execPath, [...args, ...files], { stdio: "inherit", cwd: root });
  const text = existsSync(tap) ? readFileSync(tap, "utf8") : "";
  rmSync(scratch, { recursive: true, force: true });
  const count = (name: string): number => {
    const m = new RegExp(`^# ${name} (\\d+)$`, "m").exec(text);
    return m ? Number(m[1]) : 0;
  };
  const counts = { passed: count("pass"), failed: count("fail"), skipped: count("skipped") + count("todo") };
  // A runner that died without a summary must not read as success.
  if (r.status !== 0 && counts.failed === 0) counts.failed = 1;
  return counts;
}

/**
 * Debian's interpreter, where setup-host.sh installs pytest and friends; a python3 earlier on
 * PATH (pyenv, a venv) may lack them.
 */
function systemPython(): string {
  return existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

function runPytest(): Counts {
  const r = spawnSync(systemPython(), ["-m", "pytest", "-q", "-p", "no:cacheprovider", "test/python", "test/build_helpers", "test/fixtures/python_packages/tests", "test/fixtures/zenith_client/tests"], {
    cwd: root,
    encoding: "utf8",
  });
  process.stdout.write(r.stdout ?? "");
  process.stderr.write(r.stderr ?? "");
  const grab = (word: string): number => {
    const m = new RegExp(`(\\d+) ${word}`).exec(r.stdout ?? "");
    return m ? Number(m[1]) : 0;
  };
  const counts = { passed: grab("passed"), failed: grab("failed") + grab("error"), skipped: grab("skipped") };
  if (r.status !== 0 && counts.failed === 0) counts.failed = 1;
  return counts;
}

const SHELL_DIRS = ["brics_jupyterhub", "brics_slurm", "build_helpers", "bases", "scripts", ".ci", "test/fixtures", "test/stack"];
const IGNORED_DIRS = new Set(["_dev_build_data", "_build_data", "node_modules"]);

function shellScripts(): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      if (IGNORED_DIRS.has(name)) continue;
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      const head = readFileSync(path, "utf8").slice(0, 64);
      if (name.endsWith(".sh") || /^#!.*\b(ba)?sh\b/.test(head)) found.push(path);
    }
  };
  for (const d of SHELL_DIRS) if (existsSync(join(root, d))) walk(join(root, d));
  return found.sort();
}

function runShellcheck(): Counts {
  const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  for (const script of shellScripts()) {
    const r = spawnSync("shellcheck", ["--external-sources", script], { cwd: root, encoding: "utf8" });
    const name = relative(root, script);
    if (r.status === 0) {
      counts.passed += 1;
      console.log(`shellcheck ok: ${name}`);
    } else {
      counts.failed += 1;
      console.log(`shellcheck FAILED: ${name}\n${r.stdout}${r.stderr}`);
    }
  }
  return counts;
}

function add(a: Counts, b: Counts): Counts {
  return { passed: a.passed + b.passed, failed: a.failed + b.failed, skipped: a.skipped + b.skipped };
}

function missingForUnit(): string | undefined {
  if (!commandWorks(systemPython(), ["-c", "import pytest, jinja2, traitlets, venv, setuptools, wheel"]))
    return "python3 with pytest, jinja2 and traitlets is needed (Debian: python3-pytest python3-jinja2 python3-traitlets python3-venv python3-setuptools python3-wheel)";
  if (!commandWorks("shellcheck", ["--version"])) return "shellcheck is needed (Debian: shellcheck)";
  if (!commandWorks("systemd-analyze", ["--version"])) return "systemd-analyze is needed to verify the units brics-env service writes (Debian: systemd)";
  return undefined;
}

function missingForPodman(): string | undefined {
  if (!commandWorks("podman", ["--version"])) return "podman is not installed (Debian: podman runc catatonit)";
  if (!commandWorks("podman", ["info"])) return "podman is installed but `podman info` fails; run `brics-env doctor`";
  return undefined;
}

function missingForStack(): string | undefined {
  const podman = missingForPodman();
  if (podman !== undefined) return podman;
  if (!commandWorks("mmdebstrap", ["--version"])) return "mmdebstrap is not installed (Debian: mmdebstrap)";
  // The browser scenario drives Debian's Chromium (playwright-core downloads no browser).
  const chromium = process.env["BRICS_ENV_TEST_CHROMIUM"] || "/usr/bin/chromium";
  if (!existsSync(chromium)) return `${chromium} is not installed (Debian: chromium; scripts/setup-host.sh installs it)`;
  return undefined;
}

function runTier(tier: Tier, required: boolean): TierResult {
  const zero: Counts = { passed: 0, failed: 0, skipped: 0 };
  const missing = { unit: missingForUnit, podman: missingForPodman, stack: missingForStack }[tier]();
  if (missing !== undefined) return { tier, outcome: "skipped", reason: missing, counts: zero };
  const files = testFiles(join("dist", "test", tier));
  let counts = zero;
  if (tier === "unit") {
    if (files.length > 0) counts = add(counts, runNodeTests(files, false));
    counts = add(counts, runPytest());
    counts = add(counts, runShellcheck());
  } else {
    if (files.length === 0) return { tier, outcome: "failed", reason: `no tests found in dist/test/${tier}`, counts: zero };
    counts = runNodeTests(files, true);
  }
  if (counts.passed + counts.failed === 0) return { tier, outcome: "failed", reason: "no test ran", counts };
  // A skipped test in a tier CI requires is a check that silently did not happen.
  if (required && counts.skipped > 0)
    return { tier, outcome: "failed", reason: `${counts.skipped} test(s) skipped in a required tier`, counts };
  return { tier, outcome: counts.failed === 0 ? "passed" : "failed", counts };
}

function main(): number {
  const requested = process.argv.slice(2);
  for (const t of requested) {
    if (!(TIERS as readonly string[]).includes(t)) {
      console.error(`unknown tier '${t}'; expected one of: ${TIERS.join(", ")}`);
      return 2;
    }
  }
  const tiers = requested.length > 0 ? (requested as Tier[]) : [...TIERS];
  const required = new Set(
    (process.env["BRICS_ENV_REQUIRE_TIERS"] ?? "").split(",").map((s) => s.trim()).filter((s) => s !== ""),
  );
  const results = tiers.map((tier) => {
    console.log(`\n=== tier ${tier} ===`);
    return runTier(tier, required.has(tier));
  });
  let total: Counts = { passed: 0, failed: 0, skipped: 0 };
  let ok = true;
  console.log("\n=== summary ===");
  for (const r of results) {
    total = add(total, r.counts);
    const skipIsFailure = r.outcome === "skipped" && required.has(r.tier);
    if (r.outcome === "failed" || skipIsFailure) ok = false;
    const detail = r.reason !== undefined ? ` (${r.reason})` : "";
    const note = skipIsFailure ? " -- required by BRICS_ENV_REQUIRE_TIERS" : "";
    console.log(`tier ${r.tier}: ${r.outcome}${detail}${note}; ${r.counts.passed} passed, ${r.counts.failed} failed`);
  }
  for (const t of required) {
    if (!tiers.includes(t as Tier)) {
      console.log(`tier ${t}: required by BRICS_ENV_REQUIRE_TIERS but not requested`);
      ok = false;
    }
  }
  console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
  return ok ? 0 : 1;
}

process.exitCode = main();
