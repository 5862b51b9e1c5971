/**
 * Tier 3: dev_dummyauth_extslurm, the hub in its pod driving a Slurm host that is not in the pod.
 *
 * The external host is a container of its own (slurmHost.ts): our Slurm image's stage-prod, with
 * accounts, the hub's key and its own host key set up as a site would. The deploy directory gets
 * what a site gives: sshHostname (the host's name, which the pod's network resolves), a client key
 * the host authorises for jupyterspawner, an ssh_known_hosts holding the host's real host key
 * (strict checking stays on), and a hubConnectUrl at this machine's address on that network, where
 * `up` publishes the Hub API. Then as dev_dummyauth: log in, spawn (the job runs on the external
 * host and its server registers through hubConnectUrl), faults, and an in-place `up` that makes
 * the hub anew (older configuration files on its volume). Then the hub moves as to a new
 * host, which only external Slurm allows with a server running: backup, `down --force
 * --ignore-servers` (the pod, volumes and Secrets go; the job runs on), restore, up: the user is
 * still logged in and the same job's server answers again. Then stop, down --force; the test
 * removes the external host.
 */
import { appendFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { Browser } from "./browser.js";
import { collectLogs, podman, sh } from "./podmanProbe.js";
import { hubHealthy, ORIGIN, passwordLogin, refusedOnLoopback, serverStatus, stackHarness, until } from "./harness.js";
import { ExternalSlurmHost } from "./slurmHost.js";
import { volumeName } from "../../src/plan/names.js";

const ENV = "dev_dummyauth_extslurm" as const;
/** Short intervals through the deploy ConfigMap, so that the faults are seen by the spawner quickly. */
const POLL_INTERVAL = 5;
const STARTUP_POLL_INTERVAL = 2;

const h = stackHarness(ENV);
const slurmHost = new ExternalSlurmHost("brics-stack-slurm-host");

test(`${ENV}: up against a Slurm host outside the pod, log in, spawn there, survive faults, tear down`, { timeout: 80 * 60_000 }, async () => {
  const w = h.workspace();
  let hostStarted = false;
  try {
    await slurmHost.preflight();
    await h.timed("bootstrap base images", () => h.bootstrapBases(process.env["BRICS_ENV_TEST_COLD"] === "1"));

    // 1. The external host, as a site runs it.
    await h.timed("build the external Slurm host's image (brics_slurm stage-prod)", () => slurmHost.build(w));
    await h.timed("start the external Slurm host", () => slurmHost.start(h.atTeardown));
    hostStarted = true;

    // 2. The deploy directory: init's ConfigMap, then what the site gives for its host.
    const initial = await h.initDeployDir({ pollInterval: String(POLL_INTERVAL), startupPollInterval: String(STARTUP_POLL_INTERVAL) });
    const devUsers = (initial["devUsers"] ?? "").split(/\s+/).filter((u) => u !== "");
    assert.ok(devUsers.length > 0, "init wrote devUsers");
    const site = await slurmHost.provision(w.deployDir, devUsers);
    const data = await h.initDeployDir({ ...site });
    await h.brics(["check", ENV, w.deployDir]);
    const base = data["baseUrl"] ?? "/";
    const password = data["dummyAuthPassword"];
    assert.ok(password, "init wrote a dummyAuthPassword");
    const unixUser = devUsers[0]!;
    const [user = "", project = ""] = unixUser.split(".");

    // 3. Images and volumes, then the pod.
    await h.timed("brics-env resources (hub image build)", () => h.brics(["resources", ENV]));
    h.podCreated(true);
    await h.timed("brics-env up (returns when the hub is healthy)", () => h.brics(["up", ENV, w.deployDir, "--no-build"]));
    await h.timed("  + extra wait for /hub/health", () => hubHealthy(base));

    // The Hub API is published where hubConnectUrl says, and nowhere else; the proxy on loopback only.
    const ports = (await podman(["port", h.hub])).out;
    const hubApi = new URL(site.hubConnectUrl);
    assert.deepEqual(
      ports.split("\n").filter((l) => l.trim() !== "").sort(),
      [`8000/tcp -> 127.0.0.1:8000`, `8081/tcp -> ${hubApi.hostname}:${hubApi.port}`],
      `published ports:\n${ports}`,
    );

    // 4. Log in.
    const browser = new Browser(ORIGIN);
    const accepted = await passwordLogin(browser, base, user, password);
    assert.equal(accepted.status, 302, `the password logs in (got ${accepted.status})`);
    const me = await browser.api("GET", `${base}hub/api/user`);
    assert.equal(me.status, 200, "the hub knows the logged-in user");
    assert.equal((JSON.parse(me.body) as { name: string }).name, user, "logged in as the first dev user");

    // 5. Spawn: ssh to the external host, sudo, wrapper, sbatch there; the server registers with the
    //    hub through hubConnectUrl and answers through the proxy at the host's node name.
    const options = { brics_project: `${project}.brics`, runtime: "01:00:00", ngpus: "1", partition: "", reservation: "" };
    h.record("spawn request -> server reachable", await h.spawnAndReach(browser, base, user, options));
    const job = await slurmHost.theJob(unixUser);
    const jobInfo = await slurmHost.sh(`scontrol show job -o ${job.id}`);
    assert.match(jobInfo, new RegExp(`WorkDir=/home/${project}/${unixUser}(\\s|$)`), "the job runs in the user's home");
    assert.match(jobInfo, /TresPerJob=gres\/gpu:1/, "with the GPU the form asked for (external Slurm's batch script passes --gpus)");
    assert.match(await slurmHost.sh("cat /var/log/sshd.log"), /Accepted publickey for jupyterspawner from /, "the hub logged in over ssh as jupyterspawner");
    assert.equal(await slurmHost.hubApiUrlOfJob(unixUser), `${site.hubConnectUrl}/hub/api`, "the server talks to the hub at hubConnectUrl");
    const hubLog = await sh(h.hub, "cat /var/log/jupyterhub/jupyterhub.log");
    assert.match(hubLog, /POST \/hub\/api\/batchspawner/, "the server reported its port to the Hub API");
    assert.doesNotMatch(hubLog, /not recognized/, "JupyterHub recognised every setting");

    // 6a. sshd on the external host down for three poll intervals: the server and its job survive.
    await h.timed("fault: external sshd stopped for 3 poll intervals, restarted", () => slurmHost.sshdOutage(POLL_INTERVAL));
    assert.ok(await serverStatus(browser, base, user), "server reachable after the sshd outage");
    await slurmHost.assertRuns(job, "after the sshd outage");

    // 6b. The hub restarted: the server is kept and found again on the external host.
    await slurmHost.survivesHubRestart(h, browser, base, user, job, POLL_INTERVAL);

    // 6c. The hub's configuration files on its volume are older than the package's: up applies them
    //     in place by making the hub anew (alone in its pod, a podman restart would stop the pod).
    const hubVolume = (await podman(["volume", "inspect", "--format", "{{.Mountpoint}}", volumeName("jupyterhub_root", ENV)])).out.trim();
    await appendFile(join(hubVolume, "etc/jupyterhub/jupyterhub_config.py"), "\n# as an older package wrote it\n");
    const refreshed = await h.timed("up with older hub configuration files (in place, a server running)", () => h.brics(["up", ENV, w.deployDir, "--no-build"]));
    assert.match(refreshed, /jupyterhub: recreated \(its configuration files changed \(\/etc\/jupyterhub\/jupyterhub_config\.py\)\)/, refreshed);
    await until("the server after the hub was made anew", 60, () => serverStatus(browser, base, user));
    await new Promise((r) => setTimeout(r, (POLL_INTERVAL + 2) * 1000));
    assert.match((await podman(["pod", "inspect", "--format", "{{.State}}", h.pod])).out, /Running/, "the pod still runs a poll interval later");
    await slurmHost.assertRuns(job, "after the hub was made anew in place");

    // 6d. The hub moves, as to a new host, with the server running: a backup, then everything of
    //     the environment removed (its jobs are the Slurm host's and run on), restored, up again.
    //     The browser keeps the cookies it had before the backup.
    const session = browser.clone();
    const { archive } = await h.backup("brics-env backup (hub running, a server up)");
    const moved = await h.timed("brics-env down --force --ignore-servers", () => h.brics(["down", ENV, w.deployDir, "--force", "--ignore-servers"]));
    assert.match(moved, /any user server's job keeps running on the Slurm host/, "down says what becomes of the running job");
    h.podCreated(false);
    assert.deepEqual(await h.leftovers(), [], "no pod, container, volume or Secret of the environment is left");
    assert.ok(await refusedOnLoopback(8000), "nothing answers where the proxy was");
    await slurmHost.assertRuns(job, "after down --force --ignore-servers");
    const restored = await h.timed("brics-env restore (nothing there)", () => h.brics(["restore", ENV, archive, w.deployDir]));
    assert.ok(restored.includes(`created volume ${volumeName("jupyterhub_root", ENV)}`), restored);
    assert.match(restored, /restored the hub's database \(1 user, their auth state, 1 server recorded as running\)/);
    h.podCreated(true);
    await h.timed("up after restore (returns when the hub is healthy)", () => h.brics(["up", ENV, w.deployDir, "--no-build"]));
    const restoredMe = await session.api("GET", `${base}hub/api/user`);
    assert.equal(restoredMe.status, 200, "the session from before the backup is still logged in");
    assert.equal((JSON.parse(restoredMe.body) as { name: string }).name, user, "as the same user");
    await h.timed("  + the server reachable through the new proxy", () => until("the server after the restore", 60, () => serverStatus(session, base, user)));
    await slurmHost.assertRuns(job, "after backup, down --force, restore and up: the same job");

    // 7. Stopping the server from the hub cancels the job on the external host.
    await slurmHost.stopFromHub(browser, base, user);

    // 8. down --force leaves nothing of the environment; the test removes the host.
    await h.timed("brics-env down --force", () => h.brics(["down", ENV, w.deployDir, "--force"]));
    h.podCreated(false);
    assert.deepEqual(await h.leftovers(), [], "nothing of the environment is left");
    await slurmHost.remove();
    assert.equal(await slurmHost.exists(), false, "the external Slurm host is removed");
  } catch (e) {
    process.stdout.write(`\n[stack] FAILED: ${String(e)}\n[stack] logs:\n${await collectLogs(h.hub, hostStarted ? slurmHost.name : h.slurm)}\n`);
    throw e;
  }
});
