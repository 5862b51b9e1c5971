import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { getEnvironment } from "../../src/plan/environments.js";
import { buildManifest, type Pod } from "../../src/plan/manifest.js";
import { parseSlurmVersion, slurmNeedsSysAdmin, sysAdminReason } from "../../src/plan/slurmCapabilities.js";
import { KEY_A, KEY_B } from "./fixtureKeys.js";

const slurmContainer = (grant?: boolean) => {
  const env = getEnvironment("dev_dummyauth");
  const pod = buildManifest(env, { keys: { clientKey: KEY_A, hostKey: KEY_B }, ...(grant !== undefined ? { grantSlurmSysAdmin: grant } : {}) }).find(
    (o): o is Pod => o.kind === "Pod",
  )!;
  return pod.spec.containers.find((c) => c.name === "slurm")!;
};

describe("CAP_SYS_ADMIN for the Slurm container", () => {
  it("reads the version sbatch prints", () => {
    assert.equal(parseSlurmVersion("slurm-wlm 24.11.5\n"), "24.11.5");
    assert.equal(parseSlurmVersion("slurm 23.02.7\n"), "23.02.7");
    assert.equal(parseSlurmVersion("slurm 25.05.0-0rc1"), "25.05.0");
    assert.equal(parseSlurmVersion("sbatch: error: something"), undefined);
  });

  it("is needed from Slurm 24.11 on", () => {
    for (const v of ["24.11", "24.11.0", "24.11.5", "25.05.1", "30.0"]) assert.equal(slurmNeedsSysAdmin(v), true, v);
    for (const v of ["22.05.8", "23.02.7", "23.11.10", "24.05.4"]) assert.equal(slurmNeedsSysAdmin(v), false, v);
    assert.match(sysAdminReason("24.11.5"), /^the Slurm container gets CAP_SYS_ADMIN: its Slurm 24\.11\.5 clones a namespace/);
  });

  it("is in the manifest only when asked for", () => {
    assert.equal(slurmContainer().securityContext, undefined);
    assert.equal(slurmContainer(false).securityContext, undefined);
    assert.deepEqual(slurmContainer(true).securityContext, { capabilities: { add: ["SYS_ADMIN"] } });
    // No other container gets it, granted or not.
    const env = getEnvironment("dev_dummyauth");
    const pod = buildManifest(env, { keys: { clientKey: KEY_A, hostKey: KEY_B }, grantSlurmSysAdmin: true }).find((o): o is Pod => o.kind === "Pod")!;
    assert.deepEqual(pod.spec.containers.filter((c) => c.securityContext !== undefined).map((c) => c.name), ["slurm"]);
  });
});
