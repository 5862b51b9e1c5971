import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { forceRefusal, jobsFate } from "../../src/commands/down.js";
import { getEnvironment } from "../../src/plan/environments.js";
import { SPAWNER_JOB_NAME } from "../../src/plan/names.js";
import { repoRoot } from "../../src/paths.js";

const inPod = getEnvironment("dev_dummyauth");
const external = getEnvironment("prod");
const answer = (running: number, pending = 0) => ({ version: "5.2.1", users: 3, servers: { running, pending } });

describe("down and running user servers", () => {
  it("says what becomes of their jobs, by where Slurm runs", () => {
    assert.equal(jobsFate(inPod, 1), "its Slurm job runs in the pod's Slurm container and ends with it");
    assert.equal(jobsFate(inPod, 2), "their Slurm jobs run in the pod's Slurm container and end with it");
    assert.equal(jobsFate(external, 1), "its Slurm job keeps running on the Slurm host, and the next 'up' finds it again");
    assert.equal(jobsFate(external, 3), "their Slurm jobs keep running on the Slurm host, and the next 'up' finds them again");
  });

  it("--force goes ahead when none runs", () => {
    assert.equal(forceRefusal(external, answer(0)), undefined);
  });

  it("--force refuses while servers run or start, counting them and naming both ways out", () => {
    const refusal = forceRefusal(external, answer(1, 1)) ?? "";
    assert.match(refusal, /^2 user servers are running or starting; --force would remove the hub's database, its only record of them, while their Slurm jobs keep running/);
    assert.match(refusal, /Nothing was removed\. 'brics-env down prod --force --stop-servers' stops them through the hub first \(cancelling their jobs\); --ignore-servers removes everything anyway$/);
    assert.match(forceRefusal(inPod, answer(1)) ?? "", /^1 user server is running or starting; .*its only record of it, while its Slurm job runs in the pod's Slurm container/);
  });

  it("--force refuses when the hub cannot say, and says why", () => {
    assert.match(forceRefusal(inPod, { error: "connection refused" }) ?? "", /^cannot tell whether user servers are running: the hub does not answer \(connection refused\)\. .*--stop-servers/);
  });

  it("finds the hub's jobs by the job name the batch script gives them", () => {
    const slurmPy = readFileSync(join(repoRoot(), "volumes/jupyterhub_root/etc/jupyterhub/brics_hub/slurm.py"), "utf8");
    assert.ok(slurmPy.includes(`#SBATCH --job-name=${SPAWNER_JOB_NAME}\\n`), `slurm.py's batch script names its jobs ${SPAWNER_JOB_NAME}`);
  });
});
