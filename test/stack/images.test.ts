/**
 * Tier 3: both images build for stage-dev and stage-prod on the offline bases, with the Python
 * packages supplied through the product's seams, and no image holds a private key.
 *
 * The dev images are built by `brics-env resources` (as a user builds them); the prod stage of
 * the Slurm image belongs to no environment (prod drives an external Slurm host), so both prod
 * builds run `podman build` with the build steps the product plans, in the workspace copy that
 * `resources` prepared.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { DEV_REPOS, makeWorkspace, type Workspace } from "./workspace.js";
import { BASES } from "../../src/effects/bootstrap.js";
import { planImageBuilds } from "../../src/commands/resources.js";
import { BASE_IMAGE_VARIABLE, JUPYTER_USER_ENV_VARIABLE } from "../../src/plan/images.js";
import { getEnvironment } from "../../src/plan/environments.js";
import { imageRef, type ImageName } from "../../src/plan/names.js";
import { volumesOf } from "../../src/plan/volumes.js";

const DEV_ENV = getEnvironment("dev_dummyauth");
const PROD_TAG_PREFIX = "localhost/brics-env-imagetest-";
let ws: Workspace | undefined;
const prodTags: string[] = [];

function log(line: string): void {
  process.stdout.write(`[images] ${line}\n`);
}

async function run(cmd: string, args: string[], timeoutMs = 30 * 60_000): Promise<string> {
  const r = await execa(cmd, args, { env: ws?.env, reject: false, timeout: timeoutMs, stdin: "ignore", all: true });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.exitCode}\n${r.all ?? ""}`);
  return r.stdout;
}

async function brics(args: string[]): Promise<string> {
  assert.ok(ws);
  return run(process.execPath, [ws.cli, ...args]);
}

/** A brics-env run expected to fail: its exit code and all it printed. */
async function bricsFailing(args: string[], env: NodeJS.ProcessEnv): Promise<{ exitCode: number | undefined; all: string }> {
  assert.ok(ws);
  const r = await execa(process.execPath, [ws.cli, ...args], { env, reject: false, timeout: 30 * 60_000, stdin: "ignore", all: true });
  return { exitCode: r.exitCode, all: r.all ?? "" };
}

/** The version setuptools-scm gives a clone exactly on `tag`. */
function tagVersion(tag: string | undefined): string {
  assert.ok(tag !== undefined && /^v?\d+(\.\d+)*$/.test(tag), `a release tag, got ${tag}`);
  return tag.replace(/^v/, "");
}

/** Runs a shell snippet in a throwaway container of `image`, bypassing its start-up command. */
async function inImage(image: string, script: string): Promise<string> {
  return run("podman", ["run", "--rm", "--network=none", "--entrypoint", "/bin/sh", image, "-c", script], 5 * 60_000);
}

async function imageEnv(image: string): Promise<string[]> {
  const out = await run("podman", ["image", "inspect", "--format", "{{json .Config.Env}}", image]);
  return JSON.parse(out) as string[];
}

/**
 * Private keys anywhere an image keeps configuration or data. Python's own test data is not
 * ours to judge, so site-packages and /usr are left out; ssh host keys are looked for by name
 * everywhere.
 */
const PRIVATE_KEY_SCAN = [
  "set -u",
  "find / -xdev -name 'ssh_host_*_key' -print 2>/dev/null",
  "grep -rlIs -e '-----BEGIN [A-Z ]*PRIVATE KEY-----' /etc /root /home /srv /opt /var/lib /tmp 2>/dev/null | grep -v '/site-packages/' || true",
].join("; ");

before(async () => {
  ws = await makeWorkspace();
  log(`workspace ${ws.dir}`);
  const t0 = Date.now();
  await brics(["bootstrap-bases"]);
  log(`bases ready in ${Math.round((Date.now() - t0) / 1000)} s`);
  for (const b of BASES) ws.env[b.envVar] = b.image;
});

after(async () => {
  for (const tag of prodTags) await execa("podman", ["rmi", "-f", tag], { reject: false });
  // `resources` also made the environment's volumes; nothing else of the environment exists.
  for (const v of volumesOf(DEV_ENV)) await execa("podman", ["volume", "rm", "-f", v.name], { reject: false });
  ws?.remove();
});

test("stage-dev images build through brics-env resources", { timeout: 45 * 60_000 }, async () => {
  assert.ok(ws);
  const t0 = Date.now();
  const out = await brics(["resources", DEV_ENV.name]);
  log(`resources ${DEV_ENV.name}: ${Math.round((Date.now() - t0) / 1000)} s`);
  for (const line of out.split("\n").filter((l) => l.includes(" will be built from: "))) log(line);
  for (const image of ["brics_jupyterhub", "brics_slurm"] as const) {
    assert.match(out, new RegExp(`built ${imageRef(image, "dev").replaceAll("/", "\\/")}`), `${image} built`);
  }
  // The dev clones are built at the ref the workspace named, with setuptools-scm's version of it.
  for (const repo of DEV_REPOS) {
    const ref = ws.env[repo.refVar];
    const line = `${repo.name.replaceAll("_", "-")} ${tagVersion(ref)} from ${ref} (dev clone)`;
    assert.ok(out.includes(line), `resources says: ${line}\n${out}`);
  }
});

test("stage-prod images build from the same Containerfiles and seams", { timeout: 30 * 60_000 }, async () => {
  assert.ok(ws);
  // dev_dummyauth's plan holds both images; only the target and the tag change for prod.
  for (const build of await planImageBuilds(DEV_ENV)) {
    const tag = `${PROD_TAG_PREFIX}${build.image}:prod`;
    // The plan read this process's environment; the bases were set in the workspace's.
    const base = ws.env[BASE_IMAGE_VARIABLE[build.image]];
    assert.ok(base, `${BASE_IMAGE_VARIABLE[build.image]} is set`);
    // Likewise the user environment the workspace chose (Debian's JupyterLab) for the Slurm image.
    const userEnv = build.image === "brics_slurm" ? { JUPYTER_USER_ENV: ws.env[JUPYTER_USER_ENV_VARIABLE] ?? "" } : {};
    const args = Object.entries({ ...build.buildArgs, BASE_IMAGE: base, ...userEnv }).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]);
    const t0 = Date.now();
    await run("podman", ["build", "--layers", "-f", join(ws.pkg, build.containerfile), "--target", "stage-prod", "-t", tag, ...args, join(ws.pkg, build.contextDir)]);
    prodTags.push(tag);
    log(`${build.image} stage-prod: ${Math.round((Date.now() - t0) / 1000)} s`);
  }
  assert.equal(prodTags.length, 2, "both images have a prod build");
});

test("the stages differ as documented and no image holds a private key", { timeout: 15 * 60_000 }, async () => {
  const images: [ImageName, "dev" | "prod", string][] = [
    ["brics_jupyterhub", "dev", imageRef("brics_jupyterhub", "dev")],
    ["brics_slurm", "dev", imageRef("brics_slurm", "dev")],
    ["brics_jupyterhub", "prod", `${PROD_TAG_PREFIX}brics_jupyterhub:prod`],
    ["brics_slurm", "prod", `${PROD_TAG_PREFIX}brics_slurm:prod`],
  ];
  for (const [name, stage, ref] of images) {
    const found = (await inImage(ref, PRIVATE_KEY_SCAN)).trim();
    assert.equal(found, "", `${ref} (${name}, ${stage}) holds private keys:\n${found}`);
    assert.ok((await imageEnv(ref)).includes(`CONTAINER_ENV=${stage}`), `${ref} has CONTAINER_ENV=${stage}`);
  }
  // Only the dev Slurm image creates the deploy ConfigMap's dev users at start.
  assert.match(await inImage(imageRef("brics_slurm", "dev"), "ls /usr/local/sbin"), /create-dev-users/);
  assert.doesNotMatch(await inImage(`${PROD_TAG_PREFIX}brics_slurm:prod`, "ls /usr/local/sbin"), /create-dev-users/);
  // The sudo policy parses and names the wrappers by absolute paths that exist in the image.
  for (const ref of [imageRef("brics_slurm", "dev"), `${PROD_TAG_PREFIX}brics_slurm:prod`]) {
    const out = await inImage(
      ref,
      "visudo -c >/dev/null && for s in sbatch squeue scancel; do grep -q \"/opt/jupyter/slurmspawner_wrappers/bin/slurmspawner_$s\" /etc/sudoers.d/jupyterspawner && test -x /opt/jupyter/slurmspawner_wrappers/bin/slurmspawner_$s && echo ok-$s; done",
    );
    assert.deepEqual(out.trim().split("\n"), ["ok-sbatch", "ok-squeue", "ok-scancel"], `${ref}: sudoers and wrappers`);
  }
  // Installed at the tag's version, with the _version.py setuptools-scm writes; the dev images say so in their labels.
  assert.ok(ws);
  const versions: Record<string, string> = {};
  for (const repo of DEV_REPOS) versions[repo.name] = tagVersion(ws.env[repo.refVar]);
  const probe = (module: string) =>
    `import importlib.metadata as m, ${module}; print(m.version("${module}"), ${module}.__version__, ${module}._version.__file__)`;
  for (const [ref, python, module] of [
    [imageRef("brics_jupyterhub", "dev"), "python3", "bricsauthenticator"],
    [`${PROD_TAG_PREFIX}brics_jupyterhub:prod`, "python3", "bricsauthenticator"],
    [imageRef("brics_slurm", "dev"), "/opt/jupyter/slurmspawner_wrappers/bin/python", "slurmspawner_wrappers"],
    [`${PROD_TAG_PREFIX}brics_slurm:prod`, "/opt/jupyter/slurmspawner_wrappers/bin/python", "slurmspawner_wrappers"],
  ] as const) {
    const [installed, dunder] = (await inImage(ref, `${python} -c '${probe(module)}'`)).trim().split(" ");
    assert.equal(installed, versions[module], `${ref}: ${module} installed as ${installed}`);
    assert.equal(dunder, versions[module], `${ref}: ${module}.__version__`);
  }
  for (const [image, module] of [["brics_jupyterhub", "bricsauthenticator"], ["brics_slurm", "slurmspawner_wrappers"]] as const) {
    const labels = JSON.parse(await run("podman", ["image", "inspect", "--format", "{{json .Labels}}", imageRef(image, "dev")])) as Record<string, string>;
    const name = module.replaceAll("_", "-");
    assert.equal(labels[`org.brics-env.package.${name}.version`], versions[module], `${image} label`);
  }
  // The wrappers' venv holds the wrappers alone.
  const venv = await inImage(imageRef("brics_slurm", "dev"), "/opt/jupyter/slurmspawner_wrappers/bin/python -m pip list --format=freeze 2>/dev/null");
  assert.doesNotMatch(venv, /bricsauthenticator|batchspawner/i, "nothing else in the wrappers' venv");
  // The hub's dev stage carries the dev clone's bricsauthenticator; both stages can load the spawner.
  for (const ref of [imageRef("brics_jupyterhub", "dev"), `${PROD_TAG_PREFIX}brics_jupyterhub:prod`]) {
    const out = await inImage(
      ref,
      "python3 -c 'from importlib.metadata import entry_points as e; print(sorted(x.name for x in e(group=\"jupyterhub.spawners\")))'",
    );
    assert.match(out, /'brics'/, `${ref}: the brics spawner entry point`);
  }
});

test("a git-versioned package that is not a clone is refused before any build, naming it", { timeout: 30 * 60_000 }, async () => {
  assert.ok(ws);
  const packages = join(ws.dir, "packages-without-git");
  cpSync(ws.env["BRICS_ENV_PYTHON_PACKAGES"]!, packages, { recursive: true });
  rmSync(join(packages, "bricsauthenticator", ".git"), { recursive: true, force: true });
  const r = await bricsFailing(["resources", DEV_ENV.name], { ...ws.env, BRICS_ENV_PYTHON_PACKAGES: packages });
  assert.equal(r.exitCode, 1, r.all);
  assert.match(r.all, /bricsauthenticator takes its version from git tags \(setuptools-scm\)/);
  assert.match(r.all, /SETUPTOOLS_SCM_PRETEND_VERSION_FOR_BRICSAUTHENTICATOR/);
  assert.doesNotMatch(r.all, /building localhost\//, "nothing was built");
});

test("a shipped package that does not import stops brics-env resources, naming it", { timeout: 45 * 60_000 }, async () => {
  assert.ok(ws);
  // The wrappers as a site might get them: a clone whose scripts module is broken.
  const packages = join(ws.dir, "packages-broken");
  cpSync(ws.env["BRICS_ENV_PYTHON_PACKAGES"]!, packages, { recursive: true });
  const scripts = join(packages, "slurmspawner_wrappers", "src", "slurmspawner_wrappers", "scripts.py");
  assert.ok(existsSync(scripts), scripts);
  writeFileSync(scripts, "import a_module_that_is_not_there  # broken on purpose\n");
  const t0 = Date.now();
  const r = await bricsFailing(["resources", DEV_ENV.name], { ...ws.env, BRICS_ENV_PYTHON_PACKAGES: packages });
  log(`resources with a broken package: ${Math.round((Date.now() - t0) / 1000)} s`);
  assert.equal(r.exitCode, 1, r.all.slice(-3000));
  const message = r.all.slice(r.all.lastIndexOf("failed:"));
  log(`resources said: ${message.split("\n").slice(0, 3).join(" | ")}`);
  assert.match(message, /FAILED: slurmspawner-wrappers \S+: console script \S+slurmspawner_(sbatch|squeue|scancel) does not start: ModuleNotFoundError: No module named 'a_module_that_is_not_there'/, r.all.slice(-3000));
});
