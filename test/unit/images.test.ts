import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { getEnvironment } from "../../src/plan/environments.js";
import { ArgfileError, imageBuilds, OFFLINE_BUILD_ADVICE, parseArgfile, RefVariableError, zenithClientImage } from "../../src/plan/images.js";

const HUB_ARGS = [
  "# pins of the hub image",
  "BASE_IMAGE=quay.io/jupyterhub/jupyterhub:5.4.2",
  "",
  "BRICSAUTHENTICATOR_REQUIREMENT=bricsauthenticator @ git+https://github.com/isambard-sc/bricsauthenticator.git@v0.8.0",
  "PIP_INDEX_URL=",
].join("\n");
const SLURM_ARGS = "BASE_IMAGE=docker.io/nathanhess/slurm:full-root\nSLURMSPAWNER_WRAPPERS_REQUIREMENT=slurmspawner_wrappers @ git+https://github.com/isambard-sc/slurmspawner_wrappers.git@v0.2.1\n";
const argfiles = { brics_jupyterhub: HUB_ARGS, brics_slurm: SLURM_ARGS };

describe("parseArgfile", () => {
  it("reads KEY=value lines, skipping comments and blank lines, keeping values literally", () => {
    assert.deepEqual(parseArgfile("# c\n\nA=1\n  B = x=y \nC=\nD='q'\n"), { A: "1", B: " x=y", C: "", D: "'q'" });
  });

  it("names the file and line of a malformed line", () => {
    assert.throws(() => parseArgfile("A=1\nnot an assignment\n", "brics_slurm/argfile.conf"), (e: unknown) => {
      assert.ok(e instanceof ArgfileError);
      assert.equal(e.line, 2);
      assert.match(e.message, /^brics_slurm\/argfile.conf:2: expected KEY=value/);
      return true;
    });
    assert.throws(() => parseArgfile("1A=x\n"), /line|not a valid build argument name/);
    assert.throws(() => parseArgfile("A=1\nA=2\n"), /:2: A is set twice/);
    assert.throws(() => parseArgfile("=x\n"), /not a valid build argument name/);
  });
});

describe("imageBuilds", () => {
  it("builds the hub and the Slurm image at stage-dev for in-pod Slurm, with dev repos pinned like the requirements", () => {
    const builds = imageBuilds(getEnvironment("dev_dummyauth"), { argfiles });
    assert.deepEqual(builds.map((b) => [b.image, b.target, b.tag, b.containerfile, b.contextDir]), [
      ["brics_jupyterhub", "stage-dev", "localhost/brics_jupyterhub:dev-latest", "brics_jupyterhub/Containerfile", "brics_jupyterhub"],
      ["brics_slurm", "stage-dev", "localhost/brics_slurm:dev-latest", "brics_slurm/Containerfile", "brics_slurm"],
    ]);
    assert.deepEqual(builds[0]!.devRepos.map((r) => [r.name, r.url, r.ref, r.dest]), [
      ["bricsauthenticator", "https://github.com/isambard-sc/bricsauthenticator.git", "v0.8.0", "brics_jupyterhub/_dev_build_data/bricsauthenticator"],
    ]);
    assert.deepEqual(builds[1]!.devRepos.map((r) => [r.name, r.ref]), [["slurmspawner_wrappers", "v0.2.1"]]);
    assert.equal(builds[0]!.buildArgs.PIP_INDEX_URL, "");
  });

  it("follows an upgraded pin in the argfile for the dev clone", () => {
    const b = imageBuilds(getEnvironment("dev_realauth"), { argfiles: { ...argfiles, brics_jupyterhub: HUB_ARGS.replace("@v0.8.0", "@v0.9.1") } });
    assert.equal(b[0]!.devRepos[0]!.ref, "v0.9.1");
  });

  it("builds only the hub, at stage-prod without dev repos, for prod", () => {
    const builds = imageBuilds(getEnvironment("prod"), { argfiles: { brics_jupyterhub: HUB_ARGS } });
    assert.deepEqual(builds.map((b) => [b.image, b.target, b.tag, b.devRepos.length]), [["brics_jupyterhub", "stage-prod", "localhost/brics_jupyterhub:latest", 0]]);
  });

  it("lays BRICS_ENV_* overrides over the argfile", () => {
    const builds = imageBuilds(getEnvironment("dev_dummyauth"), {
      argfiles,
      variables: {
        BRICS_ENV_JUPYTERHUB_BASE_IMAGE: "localhost/hub-base:test",
        BRICS_ENV_SLURM_BASE_IMAGE: "localhost/slurm-base:test",
        BRICS_ENV_PIP_INDEX_URL: "http://127.0.0.1:3141/simple",
        BRICS_ENV_BRICSAUTHENTICATOR_GIT_URL: "/srv/mirror/bricsauthenticator",
        BRICS_ENV_SLURMSPAWNER_WRAPPERS_GIT_URL: "",
      },
    });
    assert.equal(builds[0]!.buildArgs.BASE_IMAGE, "localhost/hub-base:test");
    assert.equal(builds[1]!.buildArgs.BASE_IMAGE, "localhost/slurm-base:test");
    assert.equal(builds[1]!.buildArgs.PIP_INDEX_URL, "http://127.0.0.1:3141/simple");
    assert.equal(builds[0]!.devRepos[0]!.url, "/srv/mirror/bricsauthenticator");
    assert.equal(builds[1]!.devRepos[0]!.url, "https://github.com/isambard-sc/slurmspawner_wrappers.git");
  });

  it("builds another tag or commit of a dev repository, in the clone and the index requirement alike", () => {
    const builds = imageBuilds(getEnvironment("dev_dummyauth"), {
      argfiles,
      variables: { BRICS_ENV_BRICSAUTHENTICATOR_REF: "v0.7.0", BRICS_ENV_SLURMSPAWNER_WRAPPERS_REF: "0123abc" },
    });
    assert.equal(builds[0]!.devRepos[0]!.ref, "v0.7.0");
    assert.equal(builds[0]!.buildArgs.BRICSAUTHENTICATOR_REQUIREMENT, "bricsauthenticator @ git+https://github.com/isambard-sc/bricsauthenticator.git@v0.7.0");
    assert.equal(builds[0]!.requirement, builds[0]!.buildArgs.BRICSAUTHENTICATOR_REQUIREMENT);
    assert.equal(builds[1]!.devRepos[0]!.ref, "0123abc");
    assert.deepEqual(builds[1]!.installsOnly, ["slurmspawner_wrappers"]);
    assert.equal(builds[0]!.installsOnly, undefined);
  });

  it("refuses a ref that is not one, naming the variable", () => {
    for (const bad of ["-x", "v1 2", "a;b", "$(id)"]) {
      assert.throws(
        () => imageBuilds(getEnvironment("dev_dummyauth"), { argfiles, variables: { BRICS_ENV_SLURMSPAWNER_WRAPPERS_REF: bad } }),
        (e: unknown) => e instanceof RefVariableError && e.message.startsWith(`BRICS_ENV_SLURMSPAWNER_WRAPPERS_REF=${bad} is not a git tag`),
      );
    }
  });

  it("chooses the Slurm image's Jupyter user environment and Miniforge mirror through BRICS_ENV_* variables", () => {
    const withDefault = { ...argfiles, brics_slurm: `${SLURM_ARGS}JUPYTER_USER_ENV=miniforge\nMINIFORGE_DOWNLOAD_URL=https://github.com/x\n` };
    const plain = imageBuilds(getEnvironment("dev_dummyauth"), { argfiles: withDefault });
    assert.equal(plain[1]!.buildArgs.JUPYTER_USER_ENV, "miniforge");
    assert.equal(plain[0]!.buildArgs.JUPYTER_USER_ENV, undefined, "the hub image has no user environment");
    const chosen = imageBuilds(getEnvironment("dev_dummyauth"), {
      argfiles: withDefault,
      variables: { BRICS_ENV_JUPYTER_USER_ENV: "debian", BRICS_ENV_MINIFORGE_DOWNLOAD_URL: "http://mirror.invalid/miniforge" },
    });
    assert.equal(chosen[1]!.buildArgs.JUPYTER_USER_ENV, "debian");
    assert.equal(chosen[1]!.buildArgs.MINIFORGE_DOWNLOAD_URL, "http://mirror.invalid/miniforge");
    // The Debian environment installs batchspawner from the packages directory too.
    assert.deepEqual(plain[1]!.installsOnly, ["slurmspawner_wrappers"]);
    assert.deepEqual(chosen[1]!.installsOnly, ["slurmspawner_wrappers", "batchspawner"]);
    assert.throws(
      () => imageBuilds(getEnvironment("dev_dummyauth"), { argfiles: withDefault, variables: { BRICS_ENV_JUPYTER_USER_ENV: "conda" } }),
      /^Error: BRICS_ENV_JUPYTER_USER_ENV="conda": expected one of miniforge, debian$/,
    );
    assert.throws(
      () => imageBuilds(getEnvironment("dev_dummyauth"), { argfiles: { ...argfiles, brics_slurm: `${SLURM_ARGS}JUPYTER_USER_ENV=Debian\n` } }),
      /brics_slurm\/argfile.conf: JUPYTER_USER_ENV="Debian": expected one of miniforge, debian/,
    );
  });

  it("reports a missing argfile", () => {
    assert.throws(() => imageBuilds(getEnvironment("dev_dummyauth"), { argfiles: { brics_jupyterhub: HUB_ARGS } }), /brics_slurm\/argfile.conf.*missing/);
  });

  it("pins the Zenith client image, overridable", () => {
    assert.equal(zenithClientImage(), "ghcr.io/azimuth-cloud/zenith-client:0.16.1");
    assert.equal(zenithClientImage({ BRICS_ENV_ZENITH_CLIENT_IMAGE: "mirror/zc:1" }), "mirror/zc:1");
  });
});

describe("the advice when a base image cannot be pulled", () => {
  it("names every seam an offline site needs: base images, Python packages, dev repositories, the user environment", async () => {
    const advice = OFFLINE_BUILD_ADVICE.join("\n");
    for (const seam of [
      "bootstrap-bases",
      "BRICS_ENV_PYTHON_PACKAGES",
      "BRICS_ENV_PIP_INDEX_URL",
      "BRICS_ENV_BRICSAUTHENTICATOR_GIT_URL",
      "BRICS_ENV_SLURMSPAWNER_WRAPPERS_GIT_URL",
      "BRICS_ENV_BRICSAUTHENTICATOR_REF",
      "BRICS_ENV_SLURMSPAWNER_WRAPPERS_REF",
      "BRICS_ENV_JUPYTER_USER_ENV=debian",
      "BRICS_ENV_MINIFORGE_DOWNLOAD_URL",
    ]) {
      assert.ok(advice.includes(seam), `the advice names ${seam}`);
    }
  });
});

describe("planImageBuilds", () => {
  it("reads the repository's argfiles and applies the variables it is given, not this process's", async () => {
    const { planImageBuilds } = await import("../../src/commands/resources.js");
    const builds = await planImageBuilds(getEnvironment("dev_dummyauth"), { BRICS_ENV_JUPYTER_USER_ENV: "debian", BRICS_ENV_SLURM_BASE_IMAGE: "localhost/base:x" });
    const slurm = builds.find((b) => b.image === "brics_slurm");
    assert.equal(slurm?.buildArgs["JUPYTER_USER_ENV"], "debian");
    assert.equal(slurm?.buildArgs["BASE_IMAGE"], "localhost/base:x");
    const plain = (await planImageBuilds(getEnvironment("dev_dummyauth"), {})).find((b) => b.image === "brics_slurm");
    assert.equal(plain?.buildArgs["JUPYTER_USER_ENV"], "miniforge", "argfile.conf's value without the variable");
  });
});
