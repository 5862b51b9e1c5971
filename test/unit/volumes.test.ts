import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { repoRoot } from "../../src/paths.js";
import { getEnvironment } from "../../src/plan/environments.js";
import { pathInVolume, SLURM_READY_FILE, volumesOf, VolumeOwnerError } from "../../src/plan/volumes.js";

describe("volumesOf", () => {
  it("gives in-pod Slurm environments a hub volume, a Slurm volume and one for /home, with FACTS' default owners", () => {
    const vols = volumesOf(getEnvironment("dev_dummyauth"));
    assert.deepEqual(vols.map((v) => [v.name, v.sourceDir, v.podVolumeName]), [
      ["jupyterhub_root_dev_dummyauth", "volumes/jupyterhub_root", "jupyterhub-root"],
      ["slurm_root_dev_dummyauth", "volumes/slurm_root", "slurm-root"],
      ["slurm_home_dev_dummyauth", "volumes/slurm_home", "slurm-home"],
    ]);
    assert.deepEqual(vols[0]!.owner, { user: "root", uid: 0, group: "root", gid: 0 });
    assert.deepEqual(vols[1]!.owner, { user: "slurm", uid: 64030, group: "slurm", gid: 64030 });
    assert.deepEqual(vols[1]!.mounts.map((m) => m.subPath), [
      "var/log/sshd.log",
      "var/log/slurmctld.log",
      "var/log/slurmd.log",
      "var/spool/slurmctld",
      "var/spool/slurmd",
    ]);
    assert.deepEqual(vols[0]!.mounts.filter((m) => m.readOnly).map((m) => m.mountPath), ["/etc/jupyterhub"]);
    // Users' homes (their files, their jobs' output) outlive the Slurm container; /home is root's.
    assert.deepEqual(vols[2]!.mounts.map((m) => [m.container, m.mountPath, m.subPath, m.readOnly]), [["slurm", "/home", "home", false]]);
    assert.deepEqual(vols[2]!.owner, { user: "root", uid: 0, group: "root", gid: 0 });
  });

  it("has no owner variables for /home: each home there is its user's", () => {
    const vols = volumesOf(getEnvironment("dev_dummyauth"), { SLURMUSER: "other", SLURMUSER_UID: "7" });
    assert.deepEqual(vols[2]!.owner, { user: "root", uid: 0, group: "root", gid: 0 });
  });

  it("gives external-Slurm environments only the hub volume", () => {
    assert.deepEqual(volumesOf(getEnvironment("prod")).map((v) => v.name), ["jupyterhub_root_prod"]);
  });

  it("applies owner overrides", () => {
    const vols = volumesOf(getEnvironment("dev_realauth"), { JUPYTERUSER: "jupyter", JUPYTERUSER_UID: "1000", SLURMGROUP_GID: "0", SLURMUSER: "" });
    assert.deepEqual(vols[0]!.owner, { user: "jupyter", uid: 1000, group: "root", gid: 0 });
    assert.deepEqual(vols[1]!.owner, { user: "slurm", uid: 64030, group: "slurm", gid: 0 });
  });

  it("reports every invalid override, naming its variable", () => {
    try {
      volumesOf(getEnvironment("dev_dummyauth"), { JUPYTERUSER_UID: "abc", SLURMGROUP: "Bad Name", SLURMUSER_UID: "-1", JUPYTERGROUP_GID: "4294967295" });
      assert.fail("should throw");
    } catch (e) {
      assert.ok(e instanceof VolumeOwnerError);
      assert.deepEqual(e.problems.map((p) => p.variable).sort(), ["JUPYTERGROUP_GID", "JUPYTERUSER_UID", "SLURMGROUP", "SLURMUSER_UID"]);
      assert.match(e.message, /JUPYTERUSER_UID: "abc" is not a numeric user id/);
    }
  });
});

describe("the Slurm ready file", () => {
  it("lies on the slurm_root volume where the start script writes it", async () => {
    assert.equal(pathInVolume("slurm_root", SLURM_READY_FILE), "var/spool/slurmd/brics-env-ready");
    const script = await readFile(join(repoRoot(), "brics_slurm", "scripts", "start-slurm.sh"), "utf8");
    assert.match(script, new RegExp(`^READY_FILE=${SLURM_READY_FILE}$`, "m"), "start-slurm.sh writes the file up watches");
  });

  it("refuses a path under none of the volume's mounts", () => {
    assert.throws(() => pathInVolume("slurm_root", "/etc/slurm/slurm.conf"), /\/etc\/slurm\/slurm.conf is under no mount of the slurm_root volume/);
    assert.throws(() => pathInVolume("slurm_root", "/var/spool/slurmdx/f"), /under no mount/);
  });
});
