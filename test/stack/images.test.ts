/**
 * Tier 3: both images build for stage-dev and stage-prod on the offline bases, with the Python
 * packages supplied through the product's seams, and no image holds a private key.
 *
 * The dev images are built by `brics-env resources` (as a user builds them); the prod stage of
 * the Slurm image belongs to no environment (prod drives an external Slurm host), so both prod
 * builds run `podman build` with the build steps the product plans (prodImages.ts).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { buildProdImage } from "./prodImages.js";
import { DEV_REPOS, makeWorkspace, type Workspace } from "./workspace.js";
import { baseTrustingIndex, buildWheels, startPackageIndex } from "./pipIndex.js";
import { watchCmdlines } from "../podman/cmdlines.js";
import { BASES } from "../../src/plan/bootstrapBases.js";
import { BASE_IMAGE_VARIABLE } from "../../src/plan/images.js";
import { getEnvironment } from "../../src/plan/environments.js";
import { imageRef, type ImageName } from "../../src/plan/names.js";
import { volumesOf } from "../../src/plan/volumes.js";
import { imageId } from "../../src/effects/podman.js";

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

/** Untagged images: the builds here that fail or are replaced leave some, which slow podman's lookups as they pile up. */
async function danglingImages(): Promise<string[]> {
  return (await run("podman", ["images", "--quiet", "--no-trunc", "--filter", "dangling=true"])).split("\n").filter((l) => l !== "");
}
let danglingBefore = new Set<string>();

before(async () => {
  danglingBefore = new Set(await danglingImages());
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
  for (const id of await danglingImages().catch(() => [])) if (!danglingBefore.has(id)) await execa("podman", ["rmi", id], { reject: false });
  ws?.remove();
});

test("stage-dev images build through brics-env resources", { timeout: 45 * 60_000 }, async () => {
  assert.ok(ws);
  const devTags = (["brics_jupyterhub", "brics_slurm"] as const).map((image) => imageRef(image, "dev"));
  const earlier = await Promise.all(devTags.map((tag) => imageId(tag)));
  const t0 = Date.now();
  const out = await brics(["resources", DEV_ENV.name]);
  log(`resources ${DEV_ENV.name}: ${Math.round((Date.now() - t0) / 1000)} s`);
  for (const line of out.split("\n").filter((l) => l.includes(" will be built from: "))) log(line);
  for (const [i, tag] of devTags.entries()) {
    assert.match(out, new RegExp(`built ${tag.replaceAll("/", "\\/")}`), `${tag} built`);
    // The image the build took the name from is gone, unless a container still uses it.
    const old = earlier[i];
    if (old === undefined || old === (await imageId(tag))) continue;
    const users = await run("podman", ["ps", "--all", "--quiet", "--filter", `ancestor=${old}`]);
    if (users.trim() === "") {
      assert.ok(out.includes(`removed the image ${tag} replaced (${old.slice(0, 12)})`), out);
      assert.equal(await imageId(old), undefined, `${tag}: the image it replaced is gone`);
    } else {
      assert.ok(out.includes(`kept the image ${tag} replaced (${old.slice(0, 12)}): a container uses it`), out);
    }
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
  for (const image of ["brics_jupyterhub", "brics_slurm"] as const) {
    const tag = `${PROD_TAG_PREFIX}${image}:prod`;
    const took = await buildProdImage(ws, image, tag);
    prodTags.push(tag);
    log(`${image} stage-prod: ${took} s`);
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

/**
 * A package index that wants a login, in a container on podman's default network (a build step's
 * loopback is its own), served from a base that trusts its plain-http address. pip gets the URL's
 * user name and password from the build secret; they must be on no command line (any user of the
 * host reads those), in no output, and nowhere in the image.
 */
test("a package index URL's user name and password reach pip, and no command line, output, history, configuration or file", { timeout: 45 * 60_000 }, async () => {
  assert.ok(ws);
  const extslurm = getEnvironment("dev_dummyauth_extslurm"); // the hub image alone
  const work = join(ws.dir, "pip-index");
  mkdirSync(work);
  const hubBase = ws.env[BASE_IMAGE_VARIABLE.brics_jupyterhub]!;
  const packages = ws.env["BRICS_ENV_PYTHON_PACKAGES"]!;
  const version = tagVersion(ws.env["BRICS_ENV_BRICSAUTHENTICATOR_REF"]);
  const wheels = await buildWheels(hubBase, new Map([[join(packages, "bricsauthenticator"), version], [join(packages, "batchspawner"), undefined]]), work);
  assert.equal(wheels.length, 2, wheels.join(", "));
  const index = await startPackageIndex(hubBase, wheels, work);
  const trustingBase = `localhost/brics-env-test-pipbase:${index.host.replaceAll(".", "-")}`;
  const wrong = `tok-wrong-${Date.now().toString(36)}`;
  const secrets = [index.password, wrong];
  const argfile = join(ws.pkg, "brics_jupyterhub", "argfile.conf");
  const pinned = readFileSync(argfile, "utf8");
  const hub = imageRef("brics_jupyterhub", "dev");
  const secretDirs = () => readdirSync(tmpdir()).filter((f) => f.startsWith("brics-env-build-secrets-"));
  const dirsBefore = secretDirs();
  const indexUrl = (password: string) => index.url.replace("://", `://${index.login}:${password}@`);
  const leaks = (text: string) => secrets.filter((s) => text.includes(s));
  /** `resources` with the index's URL and `password`, every command line of the host watched. */
  const resources = async (password: string, env: NodeJS.ProcessEnv) => {
    const w = await watchCmdlines(() => bricsFailing(["resources", extslurm.name], { ...env, BRICS_ENV_PIP_INDEX_URL: indexUrl(password) }));
    assert.deepEqual(leaks(w.result.all), [], "the output holds no password");
    assert.deepEqual(w.seen.filter((l) => leaks(l).length > 0), [], "no command line held a password");
    assert.ok(w.seen.some((l) => / -m pip install /.test(l)), `command lines were watched while pip ran (${w.scans} scans)`);
    assert.ok(w.result.all.includes(`package index ${index.url} with the URL's user name and password, given as a build secret`), w.result.all.slice(-3000));
    return w.result;
  };
  try {
    await baseTrustingIndex(hubBase, index.host, trustingBase, work);
    // The requirement by name, no staged packages: pip must fetch it from the index.
    writeFileSync(argfile, pinned.replace(/^BRICSAUTHENTICATOR_REQUIREMENT=.*$/m, `BRICSAUTHENTICATOR_REQUIREMENT=bricsauthenticator==${version}`));
    const fromIndex = { ...ws.env, BRICS_ENV_PYTHON_PACKAGES: "", [BASE_IMAGE_VARIABLE.brics_jupyterhub]: trustingBase };

    // A password the index refuses: pip presented it, the build fails, and no message holds it.
    const refused = await resources(wrong, fromIndex);
    assert.equal(refused.exitCode, 1, refused.all.slice(-3000));
    assert.match(refused.all, /FAILED: pip could not install bricsauthenticator==/);
    const refusedRequests = await index.requests();
    assert.ok(refusedRequests.some((l) => /^401 GET \/simple-\w+\/bricsauthenticator\/ auth=yes$/.test(l)), `pip sent the (wrong) credentials: ${refusedRequests.join(" | ")}`);
    assert.ok(!refusedRequests.some((l) => l.startsWith("200 ")), "nothing was served without the right password");

    // The right one: pip logs in and downloads both packages. (It then stops: the Debian base's
    // pamela 1.0 is older than JupyterHub asks for, and this index, unlike a mirror of PyPI, has
    // no newer one. What pip got is the point here.)
    await resources(index.password, fromIndex);
    const requests = await index.requests();
    log(`index requests: ${requests.join(" | ")}`);
    for (const wheel of wheels) {
      const file = wheel.split("/").pop()!;
      assert.ok(requests.includes(`200 GET /files/${encodeURIComponent(file)} auth=yes`), `${file} downloaded with the credentials`);
    }

    // An image built with the URL set (its packages staged, as an offline site's are): what podman
    // keeps of a build, each step's build arguments (history) and the configuration, holds the
    // URL without its user name and password, and no file holds the password.
    writeFileSync(argfile, pinned);
    const built = await resources(index.password, ws.env);
    assert.equal(built.exitCode, 0, built.all.slice(-3000));
    const history = await run("podman", ["history", "--no-trunc", "--format", "{{.CreatedBy}}", hub]);
    assert.ok(history.includes(`PIP_INDEX_URL=${index.url} `), `history holds the URL without credentials:\n${history}`);
    assert.match(history, /--mount=type=secret,id=pip_netrc sh \/usr\/local\/lib\/brics-build\/install-python-packages\.sh base/);
    assert.deepEqual(leaks(history), [], "podman history holds no password");
    assert.deepEqual(leaks(await run("podman", ["image", "inspect", hub])), [], "podman image inspect holds no password");
    const b64 = Buffer.from(index.password).toString("base64");
    const found = await inImage(hub, `t=$(echo ${b64} | base64 -d); grep -rlF "$t" /etc /root /home /srv /opt /tmp /run /var /usr/local 2>/dev/null || true`);
    assert.equal(found.trim(), "", `files holding the password:\n${found}`);
    assert.deepEqual(secretDirs(), dirsBefore, "the secrets' temporary files are gone");
  } finally {
    writeFileSync(argfile, pinned);
    await index.stop();
    await execa("podman", ["rmi", trustingBase], { reject: false });
    for (const v of volumesOf(extslurm)) await execa("podman", ["volume", "rm", "-f", v.name], { reject: false });
  }
});
