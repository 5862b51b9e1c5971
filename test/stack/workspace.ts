/**
 * The stack test's private copy of the package, so that the dev clones (`_dev_build_data`),
 * build data and deploy directory it makes never touch a developer's checkout, and the git
 * repositories the dev stage clones, made from test fixtures (or from the real packages).
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { execFileSync } from "node:child_process";
import { repoRoot } from "../../src/paths.js";
import { planImageBuilds } from "../../src/commands/resources.js";
import { getEnvironment } from "../../src/plan/environments.js";

/** What `brics-env` needs at run time, relative to the package root. */
const PACKAGE_ENTRIES = ["package.json", "dist", "brics_jupyterhub", "brics_slurm", "volumes", "examples", "bases"];
/** Generated or per-developer state that must not leak into the copy. */
const SKIPPED = new Set(["_dev_build_data", "_build_data", "deploy", "test", ".git"]);

/** Names the real packages go by, and the brics-env variable that points the dev clone at a repository. */
export const DEV_REPOS = [
  { name: "bricsauthenticator", envVar: "BRICS_ENV_BRICSAUTHENTICATOR_GIT_URL" },
  { name: "slurmspawner_wrappers", envVar: "BRICS_ENV_SLURMSPAWNER_WRAPPERS_GIT_URL" },
] as const;

/**
 * Directory of Python source trees or wheels that replaces the stand-ins (acceptance runs the
 * scenario with the real packages at their pinned tags this way).
 */
export const REAL_PACKAGES_VAR = "BRICS_ENV_TEST_PYTHON_PACKAGES";

export interface Workspace {
  readonly dir: string;
  /** The copied package root. */
  readonly pkg: string;
  readonly cli: string;
  readonly deployDir: string;
  /** Where the Python packages for the images come from (BRICS_ENV_PYTHON_PACKAGES). */
  readonly pythonPackages: string;
  /** Whether those are the test stand-ins. */
  readonly standIns: boolean;
  /** Environment for every brics-env run: the seams set, nothing else changed. */
  readonly env: NodeJS.ProcessEnv;
  remove(): void;
}

function git(cwd: string, ...args: string[]): void {
  execFileSync("git", ["-c", "user.name=stack test", "-c", "user.email=stack-test@localhost", ...args], {
    cwd,
    stdio: "pipe",
  });
}

/**
 * A git repository holding `tree`, committed and tagged with the ref the product checks out,
 * so `git clone --branch <ref> <path>` gives the tree back.
 */
function gitRepoFrom(tree: string, dest: string, ref: string): string {
  cpSync(tree, dest, {
    recursive: true,
    filter: (src) => !["__pycache__", ".git", "build"].includes(basename(src)) && !src.endsWith(".egg-info"),
  });
  git(dest, "init", "-q", "-b", "main");
  git(dest, "add", "-A");
  git(dest, "commit", "-q", "-m", "stack test fixture");
  if (ref !== "main") git(dest, "tag", ref);
  return dest;
}

/** The source tree named `name` in `dir`, matching the project's name or its dash/underscore spelling. */
function findTree(dir: string, name: string): string | undefined {
  const wanted = name.replaceAll("_", "-").toLowerCase();
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (!statSync(path).isDirectory()) continue;
    const norm = entry.replaceAll("_", "-").toLowerCase();
    if (norm === wanted || norm.startsWith(`${wanted}-`)) return path;
  }
  return undefined;
}

/**
 * A directory holding only what pip can install from `source` (source trees with a pyproject.toml
 * or setup.py, wheels, sdists): the fixtures directory also holds the stand-ins' own tests.
 */
function installables(source: string, dest: string): string {
  mkdirSync(dest);
  for (const entry of readdirSync(source)) {
    const path = join(source, entry);
    const isTree = statSync(path).isDirectory() && ["pyproject.toml", "setup.py"].some((f) => existsSync(join(path, f)));
    if (isTree || /\.(whl|tar\.gz|zip)$/.test(entry)) {
      cpSync(path, join(dest, entry), { recursive: true, filter: (p) => basename(p) !== "__pycache__" });
    }
  }
  return dest;
}

/** The tag or branch `brics-env resources` clones for each dev repository (the image's pin). */
async function devRepoRefs(): Promise<Map<string, string>> {
  const refs = new Map<string, string>();
  for (const build of await planImageBuilds(getEnvironment("dev_dummyauth"))) {
    for (const repo of build.devRepos) refs.set(repo.name, repo.ref);
  }
  return refs;
}

export async function makeWorkspace(): Promise<Workspace> {
  const dir = mkdtempSync(join(tmpdir(), "brics-env-stack-"));
  try {
    return await fillWorkspace(dir);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

async function fillWorkspace(dir: string): Promise<Workspace> {
  const root = repoRoot();
  const pkg = join(dir, "pkg");
  mkdirSync(pkg);
  for (const entry of PACKAGE_ENTRIES) {
    const src = join(root, entry);
    if (!existsSync(src)) continue;
    cpSync(src, join(pkg, entry), {
      recursive: true,
      filter: (p) => !SKIPPED.has(basename(p)) || p === src,
    });
  }
  symlinkSync(join(root, "node_modules"), join(pkg, "node_modules"));

  // The Jupyter user environment (Miniforge + conda-forge in production) has no offline source:
  // its stand-in goes into the Slurm image's build-context seam, which `brics-env resources`
  // leaves alone (it only mirrors _build_data/python_packages).
  cpSync(join(root, "test", "fixtures", "jupyter_user_env"), join(pkg, "brics_slurm", "_build_data", "jupyter_user_env"), {
    recursive: true,
  });

  // A debugging aid: try a change to product files (as a shell script editing the copy) without
  // touching the checkout, e.g. while the fix is being made elsewhere.
  const prepare = process.env["BRICS_ENV_TEST_PREPARE"];
  if (prepare !== undefined && prepare !== "") execFileSync(prepare, [pkg], { stdio: "inherit" });

  const real = process.env[REAL_PACKAGES_VAR];
  const pythonPackages = real !== undefined && real !== "" ? real : join(root, "test", "fixtures", "python_packages");
  if (!existsSync(pythonPackages)) throw new Error(`Python packages directory ${pythonPackages} does not exist`);

  const env: NodeJS.ProcessEnv = { ...process.env, BRICS_ENV_PYTHON_PACKAGES: installables(pythonPackages, join(dir, "python_packages")) };
  const refs = await devRepoRefs();
  const repos = join(dir, "repos");
  mkdirSync(repos);
  for (const repo of DEV_REPOS) {
    const tree = findTree(pythonPackages, repo.name);
    if (tree === undefined) {
      throw new Error(
        `${pythonPackages} has no source tree for ${repo.name}: the dev stage reinstalls it from a clone, so a tree is needed`,
      );
    }
    env[repo.envVar] = existsSync(join(tree, ".git")) ? tree : gitRepoFrom(tree, join(repos, repo.name), refs.get(repo.name) ?? "main");
  }

  return {
    dir,
    pkg,
    cli: join(pkg, "dist", "src", "cli.js"),
    deployDir: join(dir, "deploy"),
    pythonPackages,
    standIns: real === undefined || real === "",
    env,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
