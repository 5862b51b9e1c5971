/**
 * Tier 3: the whole dev_dummyauth stack, offline, driven through `brics-env` as a user drives it.
 *
 * Base images are bootstrapped from Debian packages; Python packages that cannot be had offline
 * come from test stand-ins (or, with BRICS_ENV_TEST_PYTHON_PACKAGES, from the real packages)
 * through the product's seams. The pod is brought up, logged into over HTTP, a server is spawned
 * as a real Slurm job through ssh and sudo, faults are injected, and the environment is torn down.
 * Durations are printed at the end; on failure the hub, sshd and Slurm logs are printed.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { execa } from "execa";
import { parseDocument } from "yaml";
import { Browser, formAction, hiddenXsrf, type Page } from "./browser.js";
import { collectLogs, exists, namesMatching, podman, sh, slurmJobs } from "./podmanProbe.js";
import { makeWorkspace, type Workspace } from "./workspace.js";
import { BASES } from "../../src/effects/bootstrap.js";
import { podName, podmanContainerName, secretName, volumeName } from "../../src/plan/names.js";

const ENV = "dev_dummyauth" as const;
const POD = podName(ENV);
const HUB = podmanContainerName(ENV, "jupyterhub");
const SLURM = podmanContainerName(ENV, "slurm");
const ORIGIN = "http://127.0.0.1:8000";
/** Short intervals through the deploy ConfigMap, so the faults below are seen by the spawner quickly. */
const POLL_INTERVAL = 5;
const STARTUP_POLL_INTERVAL = 2;

const durations: [string, number][] = [];
let ws: Workspace | undefined;
let createdPod = false;
/** Set once the checks in before() passed: from then on, anything of the environment is ours. */
let ownsEnvironment = false;

function seconds(since: number): number {
  return Math.round((Date.now() - since) / 100) / 10;
}

function log(line: string): void {
  process.stdout.write(`[stack] ${line}\n`);
}

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  log(`${label}…`);
  const result = await fn();
  durations.push([label, seconds(t0)]);
  log(`${label}: ${seconds(t0)} s`);
  return result;
}

async function brics(args: string[], timeoutMs = 45 * 60_000): Promise<string> {
  if (ws === undefined) throw new Error("no workspace");
  const r = await execa(process.execPath, [ws.cli, ...args], {
    env: ws.env,
    cwd: ws.dir,
    reject: false,
    timeout: timeoutMs,
    stdin: "ignore",
    all: true,
  });
  if (r.exitCode !== 0) throw new Error(`brics-env ${args.join(" ")} exited ${r.exitCode}\n${r.all}`);
  return r.all ?? "";
}

async function until<T>(what: string, timeoutS: number, probe: () => Promise<T | undefined>, everyMs = 1000): Promise<T> {
  const deadline = Date.now() + timeoutS * 1000;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutS} s waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function hubHealthy(base: string, timeoutS = 300): Promise<void> {
  await until("the hub's health endpoint", timeoutS, async () => {
    const res = await fetch(`${ORIGIN}${base}hub/health`, { signal: AbortSignal.timeout(5000) });
    return res.status === 200 ? true : undefined;
  });
}

/**
 * The user's server answers through the proxy. Its API refuses a browser without the server's own
 * cookie, which an authenticated page hands out through the OAuth round trip with the hub; a UI
 * page (`/files/`) starts that round trip whether or not a UI extension is installed.
 */
async function serverStatus(browser: Browser, base: string, user: string): Promise<Record<string, unknown> | undefined> {
  const statusUrl = `${base}user/${user}/api/status`;
  const answered = (p: Page) => p.status === 200 && new URL(p.url).pathname.endsWith(`/user/${user}/api/status`);
  let page = await browser.get(statusUrl);
  if (!answered(page)) {
    await browser.get(`${base}user/${user}/files/`);
    page = await browser.get(statusUrl);
  }
  return answered(page) ? (JSON.parse(page.body) as Record<string, unknown>) : undefined;
}

/**
 * sshd is the pod's only way from the hub to Slurm: stopping it is the fault, starting it the
 * recovery. The image's `sshd-control` tells its watchdog the outage is deliberate.
 */
async function stopSshd(): Promise<void> {
  await sh(
    SLURM,
    'if command -v sshd-control >/dev/null; then sshd-control stop; else kill "$(cat /run/sshd.pid)"; fi; ' +
      // sshd removes its pid file when it exits.
      "for i in $(seq 1 20); do [ -e /run/sshd.pid ] || exit 0; sleep 0.5; done; exit 1",
  );
}

async function startSshd(): Promise<void> {
  await sh(
    SLURM,
    "if command -v sshd-control >/dev/null; then sshd-control start; " +
      "else mkdir -p /run/sshd && /usr/sbin/sshd -E /var/log/sshd.log; fi",
  );
}

async function hashesOfHubState(): Promise<string> {
  // What the hub keeps beside its database: the auth_state crypt key (made once by the image's
  // start script) and JupyterHub's cookie secret.
  return sh(HUB, "cd /srv/jupyterhub && sha256sum jupyterhub_crypt_key jupyterhub_cookie_secret");
}

/**
 * `up` waits for the hub only; the Slurm container is ready once its entry point has started
 * every daemon and sshd (it logs "ready"). A user who spawns before that gets an ssh error.
 */
async function slurmReady(timeoutS = 180): Promise<void> {
  await until("the Slurm container's 'ready'", timeoutS, async () => {
    const r = await podman(["logs", SLURM]);
    return /start-slurm: ready/.test(r.out + r.err) ? true : undefined;
  });
}

async function environmentLeftovers(): Promise<string[]> {
  const found: string[] = [];
  if (await exists("pod", POD)) found.push(`pod ${POD}`);
  for (const c of await namesMatching("container", POD)) found.push(`container ${c}`);
  for (const v of [volumeName("jupyterhub_root", ENV), volumeName("slurm_root", ENV)]) {
    if (await exists("volume", v)) found.push(`volume ${v}`);
  }
  for (const s of await namesMatching("secret", `-${ENV}`)) found.push(`secret ${s}`);
  for (const v of await namesMatching("volume", `jupyterhub-slurm-`)) if (v.endsWith(`-${ENV}`)) found.push(`volume ${v}`);
  return found;
}

before(async () => {
  const leftovers = await environmentLeftovers();
  if (leftovers.length > 0) {
    throw new Error(
      `the stack test brings up ${ENV} itself and will not touch one that exists already: ` +
        `${leftovers.join(", ")}. Remove it with \`brics-env down ${ENV} --force\` and run again.`,
    );
  }
  const busy = await fetch(`${ORIGIN}/`, { signal: AbortSignal.timeout(2000) }).then(
    () => true,
    () => false,
  );
  if (busy) throw new Error(`${ORIGIN} already answers: port 8000 is taken, the hub could not publish on it`);
  ws = await makeWorkspace();
  ownsEnvironment = true;
  log(`workspace ${ws.dir}; Python packages from ${ws.pythonPackages}${ws.standIns ? " (test stand-ins)" : ""}`);
});

// Interrupted (Ctrl-C, CI timeout): node:test runs no after() hook, so tear down here.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    if (ws !== undefined && createdPod) {
      log(`${signal}: tearing ${ENV} down`);
      spawnSync(process.execPath, [ws.cli, "down", ENV, ws.deployDir, "--force"], { env: ws.env, stdio: "inherit", timeout: 300_000 });
    }
    ws?.remove();
    process.exit(130);
  });
}

after(async () => {
  // Someone else's environment (before() refused to start) is never touched.
  if (ownsEnvironment && (createdPod || (await environmentLeftovers()).length > 0)) {
    try {
      await brics(["down", ENV, ws?.deployDir ?? "", "--force"].filter((a) => a !== ""), 10 * 60_000);
    } catch (e) {
      log(`cleanup with brics-env down --force failed, removing by name: ${String(e)}`);
      await podman(["pod", "rm", "-f", POD]);
      for (const v of [volumeName("jupyterhub_root", ENV), volumeName("slurm_root", ENV)]) await podman(["volume", "rm", "-f", v]);
      for (const kind of ["ssh-client-key", "ssh-host-key"] as const) {
        await podman(["secret", "rm", secretName(kind, ENV)]);
        await podman(["volume", "rm", "-f", secretName(kind, ENV)]);
      }
    }
  }
  ws?.remove();
  if (durations.length > 0) {
    log("durations (s):");
    for (const [label, s] of durations) log(`  ${label.padEnd(48)} ${s}`);
  }
});

test(`${ENV}: up, log in, spawn a Jupyter server as a Slurm job, survive faults, tear down`, { timeout: 80 * 60_000 }, async () => {
  const w = ws;
  assert.ok(w, "workspace");
  try {
    // 1. Offline bases, through the product's bootstrap feature.
    await timed("bootstrap base images", async () => {
      // BRICS_ENV_TEST_COLD=1 rebuilds the bases, which also invalidates every image layer above them:
      // the closest a warm machine gets to a fresh one.
      const force = process.env["BRICS_ENV_TEST_COLD"] === "1";
      await brics(["bootstrap-bases", ...(force ? ["--force"] : [])]);
    });
    for (const b of BASES) w.env[b.envVar] = b.image;

    // 2. A deploy directory from `init`, with the poll intervals shortened through the ConfigMap.
    await brics(["init", ENV, w.deployDir]);
    const cmPath = join(w.deployDir, "deploy-configmap.yaml");
    const doc = parseDocument(await readFile(cmPath, "utf8"));
    doc.setIn(["data", "pollInterval"], String(POLL_INTERVAL));
    doc.setIn(["data", "startupPollInterval"], String(STARTUP_POLL_INTERVAL));
    await writeFile(cmPath, doc.toString());
    const data = doc.toJS().data as Record<string, string>;
    const base = data["baseUrl"] ?? "/";
    const password = data["dummyAuthPassword"];
    const devUsers = (data["devUsers"] ?? "").split(/\s+/).filter((u) => u !== "");
    assert.ok(password, "init wrote a dummyAuthPassword");
    const firstDev = devUsers[0];
    assert.ok(firstDev, "init wrote devUsers");
    const [user = "", project = ""] = firstDev.split(".");
    const unixUser = firstDev;
    const home = `/home/${project}/${unixUser}`;

    // 3. Images, volumes and dev clones, then the pod.
    await timed("brics-env resources (image builds)", () => brics(["resources", ENV]));
    createdPod = true;
    await timed("brics-env up (returns when the hub is healthy)", () => brics(["up", ENV, w.deployDir, "--no-build"]));
    await timed("  + extra wait for /hub/health", () => hubHealthy(base));
    await timed("  + extra wait for the Slurm container", () => slurmReady());

    // 4. Log in as a browser would.
    const browser = new Browser(ORIGIN);
    const loginPage = await browser.get(`${base}hub/login`);
    assert.equal(loginPage.status, 200, "login page");
    const xsrf = hiddenXsrf(loginPage);
    assert.ok(xsrf, "the login form carries an _xsrf value");
    const refused = await browser.postForm(formAction(loginPage), { _xsrf: xsrf, username: user, password: `${password}-wrong` }, false);
    // JupyterHub answers a failed login with the login page again and an error on it.
    assert.notEqual(refused.status, 302, "a wrong password does not log in");
    assert.match(refused.body, /login_error|Invalid username or password/, "the login page says why");
    assert.equal((await browser.api("GET", `${base}hub/api/user`)).status, 403, "not logged in after a refused login");
    const accepted = await browser.postForm(formAction(loginPage), { _xsrf: xsrf, username: user, password }, false);
    assert.equal(accepted.status, 302, `the right password logs in (got ${accepted.status})`);
    const me = await browser.api("GET", `${base}hub/api/user`);
    assert.equal(me.status, 200, "the hub knows the logged-in user");
    assert.equal((JSON.parse(me.body) as { name: string }).name, user, "logged in as the first dev user");

    // 5. Spawn through the options form, the production way (ssh -> sudo -> wrapper -> sbatch).
    const spawnStarted = Date.now();
    const form = await browser.get(`${base}hub/spawn`);
    assert.equal(form.status, 200, "spawn form");
    const choice = `${project}.brics`;
    assert.ok(form.body.includes(`value="${choice}"`), `the form offers ${choice}`);
    const posted = await browser.postForm(
      formAction(form),
      { brics_project: choice, runtime: "01:00:00", ngpus: "1", partition: "", reservation: "" },
      false,
    );
    // Accepted: a redirect to the pending page. Refused options come back as the form, status 200.
    assert.equal(posted.status, 302, `spawn accepted (got ${posted.status}: ${/alert[^>]*>([^<]*)/.exec(posted.body)?.[1] ?? ""})`);
    const status = await until("the user's server behind the proxy", 420, () => serverStatus(browser, base, user), 2000);
    durations.push(["spawn request -> server reachable", seconds(spawnStarted)]);
    log(`server reachable after ${seconds(spawnStarted)} s: ${JSON.stringify(status)}`);

    const jobs = await slurmJobs(SLURM);
    assert.equal(jobs.length, 1, `one job in the queue: ${JSON.stringify(jobs)}`);
    const job = jobs[0]!;
    assert.equal(job.state, "RUNNING");
    assert.equal(job.user, unixUser, "the job runs as <USER>.<PROJECT>");
    assert.match(await sh(SLURM, `scontrol show job -o ${job.id}`), new RegExp(`WorkDir=${home}(\\s|$)`), "the job runs in the user's home");
    const owner = await sh(SLURM, `stat -c %U ${home}/jupyterhub_slurmspawner_${job.id}.log`);
    assert.equal(owner.trim(), unixUser, "the job writes its log in the user's home, as the user");
    const sshdLog = await sh(SLURM, "cat /var/log/sshd.log");
    assert.match(sshdLog, /Accepted publickey for jupyterspawner/, "the hub reached Slurm over ssh as jupyterspawner");

    // 6a. sshd down for longer than the poll interval: the server and its job survive.
    await timed("fault: sshd stopped and restarted", async () => {
      await stopSshd();
      await new Promise((r) => setTimeout(r, (POLL_INTERVAL * 3 + 2) * 1000));
      await startSshd();
      await new Promise((r) => setTimeout(r, (POLL_INTERVAL + 2) * 1000));
    });
    assert.ok(await serverStatus(browser, base, user), "server reachable after the sshd outage");
    assert.deepEqual(
      (await slurmJobs(SLURM)).map((j) => [j.id, j.state]),
      [[job.id, "RUNNING"]],
      "the job was not cancelled",
    );

    // 6b. Hub restart: cleanup_servers = False keeps the server.
    await timed("fault: hub container restarted", async () => {
      const r = await podman(["restart", "--time", "20", HUB], 180_000);
      assert.equal(r.code, 0, `podman restart: ${r.err}`);
      await hubHealthy(base, 180);
    });
    await until("the server after the hub restart", 60, () => serverStatus(browser, base, user));
    assert.deepEqual((await slurmJobs(SLURM)).map((j) => j.id), [job.id], "same job after the hub restart");

    // 7. Stopping the server from the hub cancels the job.
    const stop = await browser.api("DELETE", `${base}hub/api/users/${user}/server`);
    assert.ok([202, 204].includes(stop.status), `stop accepted (got ${stop.status}: ${stop.body})`);
    await until("the job to leave the queue", 90, async () => ((await slurmJobs(SLURM)).length === 0 ? true : undefined));

    // 8. down keeps the volumes; a second up finds the hub's database and keys.
    const stateBefore = await hashesOfHubState();
    const session = browser.clone();
    await timed("brics-env down (keep volumes)", () => brics(["down", ENV, w.deployDir]));
    assert.equal(await exists("pod", POD), false, "pod gone after down");
    assert.equal(await exists("volume", volumeName("jupyterhub_root", ENV)), true, "hub volume kept");
    assert.equal(await exists("volume", volumeName("slurm_root", ENV)), true, "slurm volume kept");
    await timed("second up, hub healthy, Slurm ready", async () => {
      await brics(["up", ENV, w.deployDir, "--no-build"]);
      await hubHealthy(base);
      await slurmReady();
    });
    assert.equal(await hashesOfHubState(), stateBefore, "crypt key and cookie secret survived down/up");
    const again = await session.api("GET", `${base}hub/api/user`);
    assert.equal(again.status, 200, "the earlier login session is still valid: the hub database was kept");

    // 9. down --force leaves nothing of the environment.
    await timed("brics-env down --force", () => brics(["down", ENV, w.deployDir, "--force"]));
    createdPod = false;
    assert.deepEqual(await environmentLeftovers(), [], "nothing of the environment is left");
  } catch (e) {
    process.stdout.write(`\n[stack] FAILED: ${String(e)}\n[stack] logs:\n${await collectLogs(HUB, SLURM)}\n`);
    throw e;
  }
});
