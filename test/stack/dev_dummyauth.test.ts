/**
 * Tier 3: the whole dev_dummyauth stack, offline, driven through `brics-env` as a user drives it.
 *
 * Base images are bootstrapped from Debian packages; Python packages that cannot be had offline
 * come from test stand-ins (or, with BRICS_ENV_TEST_PYTHON_PACKAGES, from the real packages)
 * through the product's seams. The pod is brought up, logged into over HTTP, a server is spawned
 * as a real Slurm job through ssh and sudo, faults are injected, and the environment is torn down.
 * Durations are printed at the end; on failure the hub, sshd and Slurm logs are printed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFile, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { parseDocument } from "yaml";
import { Browser, formAction, hiddenXsrf, visibleText } from "./browser.js";
import { collectLogs, exists, podman, sh, slurmJobs } from "./podmanProbe.js";
import { hubHealthy, ORIGIN, seconds, serverStatus, stackHarness, until } from "./harness.js";
import { startCmdlineScan, tokenOfRunningJob } from "./secretScan.js";
import { BASES } from "../../src/plan/bootstrapBases.js";
import { readBackupArchive } from "../../src/effects/backupArchive.js";
import { BACKUP_MANIFEST } from "../../src/plan/backup.js";
import { podName, podmanContainerName, SPAWNER_JOB_NAME, volumeName } from "../../src/plan/names.js";
import { pathInVolume, SLURM_READY_FILE } from "../../src/plan/volumes.js";

const ENV = "dev_dummyauth" as const;
const POD = podName(ENV);
const HUB = podmanContainerName(ENV, "jupyterhub");
const SLURM = podmanContainerName(ENV, "slurm");
/** Short intervals through the deploy ConfigMap, so the faults below are seen by the spawner quickly. */
const POLL_INTERVAL = 5;
const STARTUP_POLL_INTERVAL = 2;
/** Shown on every hub page; the hub must show it as text, not run it. */
const ANNOUNCEMENT = 'Maintenance <script>alert("brics")</script> on Friday & Saturday';
const ANNOUNCEMENT_AS_HTML = "Maintenance &lt;script&gt;alert(&quot;brics&quot;)&lt;/script&gt; on Friday &amp; Saturday";
/** The second up shortens idleTimeout so that an untouched server stops itself during the test. */
const SHORT_IDLE_TIMEOUT = 20;

const h = stackHarness(ENV);

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

/** The pids of the Slurm container's processes whose command name matches a shell pattern (no procps there). */
function pidsOf(pattern: string): string {
  return `$(for p in /proc/[0-9]*; do case "$(cat "$p/comm" 2>/dev/null)" in ${pattern}) echo "\${p#/proc/}";; esac; done)`;
}

/** The local addresses of the sockets listening on `port` in a container, from /proc/net/tcp{,6}. */
async function listenersOn(container: string, port: number): Promise<string[]> {
  const text = await sh(container, "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null || true");
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const addresses: string[] = [];
  for (const line of text.split("\n")) {
    const [, local, , state] = line.trim().split(/\s+/);
    if (state !== "0A" || local === undefined || !local.endsWith(`:${hexPort}`)) continue;
    const hex = local.slice(0, -5);
    // Each 32-bit word is in host (little-endian) byte order.
    const bytes = (hex.match(/.{8}/g) ?? []).flatMap((w) => (w.match(/../g) ?? []).reverse().map((b) => parseInt(b, 16)));
    addresses.push(
      bytes.length === 4
        ? bytes.join(".")
        : bytes.every((b, i) => b === (i === 15 ? 1 : 0))
          ? "::1"
          : bytes.every((b) => b === 0)
            ? "::"
            : hex,
    );
  }
  return addresses;
}

async function hashesOfHubState(): Promise<string> {
  // What the hub keeps beside its database: the auth_state crypt key (made once by the image's
  // start script) and JupyterHub's cookie secret.
  return sh(HUB, "cd /srv/jupyterhub && sha256sum jupyterhub_crypt_key jupyterhub_cookie_secret");
}

function assertAnnouncementShownAsText(page: { body: string }, where: string): void {
  assert.ok(page.body.includes(ANNOUNCEMENT_AS_HTML), `${where} shows the announcement`);
  assert.ok(!page.body.includes("<script>alert("), `${where} does not carry the announcement's HTML as markup`);
}

/**
 * POSTs the spawn form and returns what the user is shown about the failure: JupyterHub shows a
 * spawn that fails within a second on the form itself, a slower one on the spawn-pending page.
 */
async function whatTheFailedSpawnSays(browser: Browser, base: string, user: string, options: Record<string, string>): Promise<string> {
  const form = await browser.get(`${base}hub/spawn`);
  const posted = await browser.postForm(formAction(form), options, false);
  if (posted.status !== 302) return visibleText(posted.body);
  return until("the failed spawn's page", 60, async () => {
    const page = await browser.raw("GET", `${base}hub/spawn-pending/${user}`);
    return /Spawn failed/.test(page.body) ? visibleText(page.body) : undefined;
  });
}

/** `brics-env` expected to fail: its exit code and output (the harness's brics() throws on failure). */
async function bricsFailing(args: string[]): Promise<{ code: number; output: string }> {
  const w = h.workspace();
  const r = await execa(process.execPath, [w.cli, ...args], { env: w.env, cwd: w.dir, reject: false, timeout: 600_000, stdin: "ignore", all: true });
  return { code: r.exitCode ?? -1, output: r.all ?? "" };
}

/** A container's id and when it started: a container recreated or restarted shows another. */
async function startedAs(container: string): Promise<string> {
  const r = await podman(["inspect", "--format", "{{.Id}} {{.State.StartedAt}}", container]);
  assert.equal(r.code, 0, r.err);
  return r.out.trim();
}

/** The user's server, through its own REST API (the contents API JupyterLab saves notebooks with). */
async function contents(browser: Browser, base: string, user: string, path: string, put?: string): Promise<{ status: number; body: string }> {
  const url = `${base}user/${user}/api/contents/${path}`;
  if (put === undefined) return browser.raw("GET", url);
  // The server checks its own _xsrf cookie (set on its pages) against the header for a cookie-authenticated write.
  const xsrf = browser.cookie("_xsrf", `${base}user/${user}/`);
  assert.ok(xsrf, "the user's server set its _xsrf cookie");
  return browser.raw("PUT", url, {
    headers: { "Content-Type": "application/json", "X-XSRFToken": xsrf },
    body: JSON.stringify({ type: "file", format: "text", content: put }),
  });
}

/**
 * Watches the in-pod Slurm's queue (the hub's jobs only) from inside its container until the
 * container goes: every successful squeue prints one line with the number of jobs, so the last
 * line is the queue as it was just before the container was stopped.
 */
function watchQueue(): { stop: () => Promise<string[]> } {
  const script = `while :; do out=$(squeue --noheader --name=${SPAWNER_JOB_NAME} --format=%i 2>/dev/null) && echo "jobs:$(printf '%s' "$out" | grep -c .)"; sleep 0.2; done`;
  const child = spawn("podman", ["exec", SLURM, "sh", "-c", script], { stdio: ["ignore", "pipe", "ignore"] });
  let text = "";
  child.stdout.on("data", (c: Buffer) => (text += c.toString()));
  const ended = new Promise<void>((resolve) => child.on("close", () => resolve()));
  return {
    stop: async () => {
      await Promise.race([ended, new Promise((r) => setTimeout(r, 30_000))]);
      child.kill();
      return text.split("\n").filter((l) => l.startsWith("jobs:"));
    },
  };
}

test(`${ENV}: up, log in, spawn a Jupyter server as a Slurm job, survive faults, tear down`, { timeout: 80 * 60_000 }, async () => {
  const w = h.workspace();
  try {
    // 1. Offline bases, through the product's bootstrap feature.
    await h.timed("bootstrap base images", async () => {
      // BRICS_ENV_TEST_COLD=1 rebuilds the bases, which also invalidates every image layer above them:
      // the closest a warm machine gets to a fresh one.
      const force = process.env["BRICS_ENV_TEST_COLD"] === "1";
      await h.brics(["bootstrap-bases", ...(force ? ["--force"] : [])]);
    });
    for (const b of BASES) w.env[b.envVar] = b.image;

    // 2. A deploy directory from `init`, with the poll intervals shortened through the ConfigMap.
    await h.brics(["init", ENV, w.deployDir]);
    const cmPath = join(w.deployDir, "deploy-configmap.yaml");
    const doc = parseDocument(await readFile(cmPath, "utf8"));
    doc.setIn(["data", "pollInterval"], String(POLL_INTERVAL));
    doc.setIn(["data", "startupPollInterval"], String(STARTUP_POLL_INTERVAL));
    doc.setIn(["data", "announcement"], ANNOUNCEMENT);
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
    // The dummy authenticator logs in the first dev user: make them an admin.
    doc.setIn(["data", "adminUsers"], user);
    await writeFile(cmPath, doc.toString());
    const home = `/home/${project}/${unixUser}`;

    // 3. Images, volumes and dev clones, then the pod.
    await h.timed("brics-env resources (image builds)", () => h.brics(["resources", ENV]));
    h.podCreated(true);
    const upStarted = Date.now();
    const upOutput = await h.timed("brics-env up (returns when the hub is healthy)", () => h.brics(["up", ENV, w.deployDir, "--no-build"]));
    await h.timed("  + extra wait for /hub/health", () => hubHealthy(base));
    await h.timed("  + extra wait for the Slurm container", () => h.slurmReady());
    // up watched for Slurm's ready file from the host: the start script wrote it on the slurm_root
    // volume during this up.
    const slurmVolume = (await podman(["volume", "inspect", "--format", "{{.Mountpoint}}", volumeName("slurm_root", ENV)])).out.trim();
    const readyFile = await stat(join(slurmVolume, pathInVolume("slurm_root", SLURM_READY_FILE)));
    assert.ok(readyFile.mtimeMs >= upStarted, `the Slurm ready file was written during this up (${new Date(readyFile.mtimeMs).toISOString()})`);

    // 3a. The offline base's Slurm (24.11) needs CAP_SYS_ADMIN for the hub's jobs: the Slurm
    //     container gets it, and up says so; podman runs as root here, and up says what that means.
    assert.match(upOutput, /the Slurm container gets CAP_SYS_ADMIN: its Slurm 2\d\.\d+(\.\d+)? clones a namespace/);
    assert.match(upOutput, /podman runs as root here, so:/);
    // CAP_SYS_ADMIN is bit 21 of the capability sets in /proc/<pid>/status.
    const hasSysAdmin = async (c: string) => (BigInt(`0x${(await sh(c, "sed -n 's/^CapEff:[[:space:]]*//p' /proc/1/status")).trim()}`) >> 21n) & 1n;
    assert.equal(await hasSysAdmin(SLURM), 1n, "the Slurm container has CAP_SYS_ADMIN");
    assert.equal(await hasSysAdmin(HUB), 0n, "the hub container does not");

    // 3b. The Hub API listens on the pod's loopback only: the user servers in the Slurm container
    //     reach it there, nothing outside the pod can.
    const hubApi = await listenersOn(HUB, 8081);
    assert.ok(hubApi.length > 0, "the Hub API listens");
    assert.deepEqual(hubApi.filter((a) => a !== "127.0.0.1" && a !== "::1"), [], `the Hub API listens on loopback only: ${hubApi.join(", ")}`);

    // 4. Log in as a browser would.
    const browser = new Browser(ORIGIN);
    const loginPage = await browser.get(`${base}hub/login`);
    assert.equal(loginPage.status, 200, "login page");
    assertAnnouncementShownAsText(loginPage, "the login page");
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
    assert.equal((JSON.parse(me.body) as { admin: boolean }).admin, true, "adminUsers made them an admin");
    const admin = await browser.get(`${base}hub/admin`);
    assert.equal(admin.status, 200, "the admin panel opens for an admin");
    assertAnnouncementShownAsText(admin, "the admin page");
    assertAnnouncementShownAsText(await browser.get(`${base}hub/home`), "the home page");

    // 4b. A spawn that fails for a reason the hub can know (the submit wrapper is missing on the
    //     Slurm host): the user reads one sentence saying what failed and whom to tell, the hub's
    //     log has the detail.
    const choice = `${project}.brics`;
    const options = { brics_project: choice, runtime: "01:00:00", ngpus: "1", partition: "", reservation: "" };
    await h.timed("spawn with the submit wrapper missing", async () => {
      const wrapper = `${data["slurmSpawnerWrappersBin"]}/slurmspawner_sbatch`;
      await sh(SLURM, `mv ${wrapper} ${wrapper}.away`);
      let told: string;
      try {
        told = await whatTheFailedSpawnSays(browser, base, user, options);
      } finally {
        await sh(SLURM, `mv ${wrapper}.away ${wrapper}`);
      }
      assert.match(
        told,
        /The job submission command slurmspawner_sbatch is missing on the Slurm host, so your server was not started; please tell the service's administrators\./,
      );
      assert.doesNotMatch(told, /Unhandled error/);
      const hubLog = await sh(HUB, "cat /var/log/jupyterhub/jupyterhub.log");
      assert.match(hubLog, /slurmspawner_sbatch: command not found/, "the hub's log has the detail");
      assert.doesNotMatch(hubLog, /not recognized/, "JupyterHub recognised every setting");
    });

    // 5. Spawn through the options form, the production way (ssh -> sudo -> wrapper -> sbatch),
    //    with every command line on both sides recorded while it runs.
    const scans = [await startCmdlineScan(HUB), await startCmdlineScan(SLURM)] as const;
    h.record("spawn request -> server reachable", await h.spawnAndReach(browser, base, user, options));

    // 5a. The Hub API token (in the job's environment) was never on a command line on either side,
    //     nor in sshd's, sudo's or the hub's log.
    const [hubCmdlines, slurmCmdlines] = [await scans[0].stop(), await scans[1].stop()];
    const token = await tokenOfRunningJob(SLURM);
    assert.ok(hubCmdlines.some((c) => /^(timeout .*)?ssh .*slurmspawner_sbatch/.test(c)), "the scan saw the hub's ssh command that submitted the job");
    assert.ok(slurmCmdlines.some((c) => new RegExp(`^sudo -u ${unixUser} .*slurmspawner_sbatch`).test(c)), "the scan saw sudo run the submit wrapper");
    assert.deepEqual(hubCmdlines.filter((c) => c.includes(token)), [], "no command line in the hub container has the token");
    assert.deepEqual(slurmCmdlines.filter((c) => c.includes(token)), [], "no command line in the Slurm container has the token");
    const sudoLog = await sh(SLURM, "cat /var/log/sudo.log");
    assert.match(sudoLog, /slurmspawner_sbatch/, "sudo logs what jupyterspawner runs");
    for (const [name, text] of [
      ["sudo's log", sudoLog],
      ["sshd's log", await sh(SLURM, "cat /var/log/sshd.log")],
      ["the hub's log", await sh(HUB, "cat /var/log/jupyterhub/jupyterhub.log")],
    ] as const) {
      assert.ok(!text.includes(token), `${name} does not have the token`);
    }

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

    // 5b. Seeing the service: status asks the hub; /hub/metrics answers the prometheus service's token only.
    await h.timed("brics-env status asks the hub", async () => {
      const text = await h.brics(["status", ENV]);
      assert.match(text, /^ {4}hub: JupyterHub \d+\.\d+\.\d+\S*, 1 user, 1 server running$/m, text);
      const json = JSON.parse(await h.brics(["status", ENV, "--json"])) as { hub: { users: number; servers: { running: number; pending: number } } };
      assert.deepEqual([json.hub.users, json.hub.servers], [1, { running: 1, pending: 0 }]);
    });
    const metricsUrl = `${ORIGIN}${base}hub/metrics`;
    assert.equal((await fetch(metricsUrl)).status, 403, "/hub/metrics without a token");
    const scrapeToken = (await sh(HUB, "cat /srv/jupyterhub/prometheus-service.token")).trim();
    assert.equal((await sh(HUB, "stat -c %a /srv/jupyterhub/prometheus-service.token /srv/jupyterhub/brics-env-service.token")).split(/\s+/).filter(Boolean).join(" "), "600 600");
    const scraped = await fetch(metricsUrl, { headers: { Authorization: `Bearer ${scrapeToken}` } });
    assert.equal(scraped.status, 200, "/hub/metrics with the prometheus service's token");
    assert.match(await scraped.text(), /^jupyterhub_running_servers(\{[^}]*\})? 1(\.0)?$/m);
    // Environments with external Slurm publish the Hub API port (8081), which serves /hub/metrics as well.
    const viaHubPort =
      "import urllib.request as u; t = open('/srv/jupyterhub/prometheus-service.token').read().strip(); " +
      `print(u.urlopen(u.Request('http://127.0.0.1:8081${base}hub/metrics', headers={'Authorization': 'Bearer ' + t})).status)`;
    assert.equal((await sh(HUB, `python3 -c "${viaHubPort}"`)).trim(), "200", "/hub/metrics on the Hub API port");
    const scraperApi = await fetch(`${ORIGIN}${base}hub/api/users`, { headers: { Authorization: `token ${scrapeToken}` } });
    assert.equal(scraperApi.status, 403, "the scraper's token reads metrics and nothing else");
    // The hub's log reaches the volume through the rotating writer (size-limited), not tee.
    // ([g]: grep's own command line does not match itself.)
    assert.match(await sh(HUB, "grep -l 'brics-rotating-lo[g]' /proc/[0-9]*/cmdline 2>/dev/null | head -n 1"), /cmdline/);

    // 6a. sshd down for longer than the poll interval: the server and its job survive.
    await h.timed("fault: sshd stopped and restarted", async () => {
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

    // 6b. Failures on the Slurm side that say nothing about the job: each keeps the server and its
    //     job, and the hub's log says why at warning level.
    const wrappers = data["slurmSpawnerWrappersBin"] ?? "";
    const survives = async (fault: string, detail: RegExp, inject: string, repair: string, waitS = 60) => {
      await h.timed(`fault: ${fault}`, async () => {
        const logLines = (await sh(HUB, "wc -l < /var/log/jupyterhub/jupyterhub.log")).trim();
        await sh(SLURM, inject);
        try {
          await until(`a poll that reads "${fault}" as state unknown`, waitS, async () => {
            const since = await sh(HUB, `tail -n +${Number(logLines) + 1} /var/log/jupyterhub/jupyterhub.log`);
            const warned = since.split(/(?=^\[[A-Z] )/m).find((r) => r.startsWith("[W ") && r.includes(`Slurm job ${job.id} of ${unixUser}: state unknown, keeping the server and asking again: `));
            return warned !== undefined && detail.test(warned) ? true : undefined;
          });
          await new Promise((r) => setTimeout(r, (POLL_INTERVAL + 1) * 1000));
        } finally {
          await sh(SLURM, repair);
        }
      });
      assert.ok(await until(`the server after "${fault}"`, 60, () => serverStatus(browser, base, user)), `server reachable after: ${fault}`);
      assert.deepEqual((await slurmJobs(SLURM)).map((j) => [j.id, j.state]), [[job.id, "RUNNING"]], `the job runs on after: ${fault}`);
    };
    await survives(
      "the job's account unknown to sudo (an LDAP outage)",
      new RegExp(`sudo: unknown user ${unixUser}`),
      `sed -i 's/^${unixUser}:/${unixUser}x:/' /etc/passwd /etc/shadow`,
      `sed -i 's/^${unixUser}x:/${unixUser}:/' /etc/passwd /etc/shadow`,
    );
    await survives(
      "the sudo rule removed",
      /sudo: .*password is required/,
      "mv /etc/sudoers.d/jupyterspawner /root/jupyterspawner.sudoers",
      "mv /root/jupyterspawner.sudoers /etc/sudoers.d/jupyterspawner",
    );
    await survives(
      "the squeue wrapper exiting with a Python traceback",
      /Traceback \(most recent call last\)[\s\S]*ModuleNotFoundError/,
      `mv ${wrappers}/slurmspawner_squeue ${wrappers}/slurmspawner_squeue.away && ` +
        `printf '#!/usr/bin/python3\\nimport slurmspawner_wrappers_not_installed\\n' > ${wrappers}/slurmspawner_squeue && chmod 755 ${wrappers}/slurmspawner_squeue`,
      `mv ${wrappers}/slurmspawner_squeue.away ${wrappers}/slurmspawner_squeue`,
    );
    await survives(
      "slurmctld stopped (SIGSTOP: it accepts connections and never answers)",
      /slurm_load_jobs error: /,
      `kill -STOP ${pidsOf("slurmctld")}`,
      `kill -CONT ${pidsOf("slurmctld")}`,
      90,
    );
    // A half-open connection: while a query is under way, every sshd process of the Slurm host stops
    // (SIGSTOP), so the hub's ssh hears nothing more and would wait forever; ServerAliveInterval
    // ends it. The query wrapper is slowed down so that the stop lands in the middle of a query.
    const started = "/tmp/brics-env-stack-query-started";
    await survives(
      "the Slurm host's sshd stops answering in the middle of a query",
      /Timeout, server \S+ not responding/,
      `rm -f ${started} && mv ${wrappers}/slurmspawner_squeue ${wrappers}/slurmspawner_squeue.away && ` +
        `printf '#!/bin/sh\\ntouch ${started}\\nsleep 3\\nexec ${wrappers}/slurmspawner_squeue.away\\n' > ${wrappers}/slurmspawner_squeue && ` +
        `chmod 755 ${wrappers}/slurmspawner_squeue && ` +
        `for i in $(seq 1 400); do [ -e ${started} ] && break; sleep 0.05; done && [ -e ${started} ] && kill -STOP ${pidsOf("sshd*")}`,
      `kill -CONT ${pidsOf("sshd*")}; mv ${wrappers}/slurmspawner_squeue.away ${wrappers}/slurmspawner_squeue`,
      120,
    );

    // 6c. Hub restart: cleanup_servers = False keeps the server.
    await h.timed("fault: hub container restarted", () => h.restartHub(base));
    await until("the server after the hub restart", 60, () => serverStatus(browser, base, user));
    assert.deepEqual((await slurmJobs(SLURM)).map((j) => j.id), [job.id], "same job after the hub restart");

    // 6d. The user saves a file through the running server; it lands in their home, on slurm_home.
    const saved = `written by ${user} through the server of job ${job.id}\n`;
    const put = await contents(browser, base, user, "survives-down-up.txt", saved);
    assert.ok([200, 201].includes(put.status), `the server saved the file (got ${put.status}: ${put.body.slice(0, 200)})`);
    assert.equal((await sh(SLURM, `stat -c %U ${home}/survives-down-up.txt`)).trim(), unixUser, "the file is the user's");

    // 6e. Changes applied to the running environment: two ConfigMap values and the hub's
    //     jupyterhub_config.py (as a newer package has it). Only the hub is recreated; the Slurm
    //     container, whose slurmd runs the user's job, keeps running, and so does the server.
    const slurmBefore = await startedAs(SLURM);
    const hubBefore = await startedAs(HUB);
    doc.setIn(["data", "logLevel"], "DEBUG");
    doc.setIn(["data", "pollInterval"], String(POLL_INTERVAL + 1));
    await writeFile(cmPath, doc.toString());
    const configLine = `# changed by the stack test at ${new Date().toISOString()}`;
    await appendFile(join(w.pkg, "volumes", "jupyterhub_root", "etc", "jupyterhub", "jupyterhub_config.py"), `${configLine}\n`);
    const applied = await h.timed("up applying a config change (in place, a server running)", () => h.brics(["up", ENV, w.deployDir, "--no-build"]));
    assert.match(applied, /applying changes to dev_dummyauth:/);
    assert.match(applied, /^ {2}jupyterhub: recreated \(deploy-config keys logLevel, pollInterval changed; its configuration files changed \(\/etc\/jupyterhub\/jupyterhub_config\.py\)\)$/m);
    assert.match(applied, /^ {2}slurm: unchanged, keeps running$/m);
    assert.equal(await startedAs(SLURM), slurmBefore, "the Slurm container was neither recreated nor restarted");
    assert.notEqual(await startedAs(HUB), hubBefore, "the hub container was recreated");
    assert.match(await sh(HUB, "env"), /^DEPLOY_CONFIG_LOG_LEVEL=DEBUG$/m, "the hub runs with the new value");
    assert.match(await sh(HUB, "tail -n 1 /etc/jupyterhub/jupyterhub_config.py"), new RegExp(`^${configLine}$`, "m"), "the volume's copy was updated");
    await until("the server after the change", 60, () => serverStatus(browser, base, user));
    assert.deepEqual((await slurmJobs(SLURM)).map((j) => [j.id, j.state]), [[job.id, "RUNNING"]], "the job ran on");
    await until("a DEBUG line in the hub's log", 30, async () => (/^\[D /m.test(await sh(HUB, "tail -n 200 /var/log/jupyterhub/jupyterhub.log")) ? true : undefined));
    const unchanged = await h.timed("up again, nothing changed", () => h.brics(["up", ENV, w.deployDir, "--no-build"]));
    assert.match(unchanged, /is running as configured: nothing to apply/);
    assert.notEqual(await startedAs(HUB), hubBefore);

    // 6f. Back up with the server running; the hub loses its state; restore brings back the
    //     user's login and the record of the server, whose job never stopped.
    const { output: backupOut, archive: backupFile } = await h.backup("brics-env backup (hub running, a server up)");
    assert.match(backupOut, /from the running hub, with SQLite's online backup/);
    assert.equal((await stat(backupFile)).mode & 0o777, 0o600, "the archive is 0600");
    const archived = await readBackupArchive(backupFile);
    assert.deepEqual(
      [...archived.keys()].sort(),
      [BACKUP_MANIFEST, "deploy/deploy-configmap.yaml", "deploy/ssh_client_key", "deploy/ssh_client_key.pub", "deploy/ssh_host_key", "deploy/ssh_host_key.pub",
        "hub/brics-env-service.token", "hub/jupyterhub.sqlite", "hub/jupyterhub_cookie_secret", "hub/jupyterhub_crypt_key", "hub/prometheus-service.token"].sort(),
    );
    const refusedRestore = await bricsFailing(["restore", ENV, backupFile, w.deployDir]);
    assert.equal(refusedRestore.code, 1, refusedRestore.output);
    assert.match(refusedRestore.output, /dev_dummyauth is live: its hub is running .*nothing was changed\. --overwrite replaces it/);
    const keptSession = browser.clone();
    await sh(HUB, "rm /srv/jupyterhub/jupyterhub.sqlite");
    assert.equal((await podman(["restart", "--time", "20", HUB], 180_000)).code, 0);
    await hubHealthy(base, 180);
    assert.equal((await browser.clone().api("GET", `${base}hub/api/user`)).status, 403, "a hub without its database has forgotten the user");
    const restoredOut = await h.timed("brics-env restore --overwrite (live environment)", () => h.brics(["restore", ENV, backupFile, w.deployDir, "--overwrite"]));
    assert.match(restoredOut, /backed up what is replaced to .*before-restore\.tar\.gz/);
    assert.match(restoredOut, /restored the hub's database \(1 user, their auth state, 1 server recorded as running\)/);
    const restarted = await h.timed("up after restore (the hub started again)", () => h.brics(["up", ENV, w.deployDir, "--no-build"]));
    assert.match(restarted, /^ {2}jupyterhub: started again \(it is exited\)$/m);
    assert.equal(await startedAs(SLURM), slurmBefore, "restore and up left the Slurm container alone");
    assert.equal((await keptSession.api("GET", `${base}hub/api/user`)).status, 200, "the user is logged in again: the restored database knows their session");
    await until("the server after the restore", 60, () => serverStatus(keptSession, base, user));
    assert.deepEqual((await slurmJobs(SLURM)).map((j) => [j.id, j.state]), [[job.id, "RUNNING"]], "the same job, never stopped");

    // 7. Stopping the server from the hub cancels the job.
    const stop = await browser.api("DELETE", `${base}hub/api/users/${user}/server`);
    assert.ok([202, 204].includes(stop.status), `stop accepted (got ${stop.status}: ${stop.body})`);
    await until("the job to leave the queue", 90, async () => ((await slurmJobs(SLURM)).length === 0 ? true : undefined));

    // 8. down keeps the volumes; a second up finds the hub's database and keys.
    const stateBefore = await hashesOfHubState();
    const session = browser.clone();
    await h.timed("brics-env down (keep volumes)", () => h.brics(["down", ENV, w.deployDir]));
    assert.equal(await exists("pod", POD), false, "pod gone after down");
    assert.equal(await exists("volume", volumeName("jupyterhub_root", ENV)), true, "hub volume kept");
    assert.equal(await exists("volume", volumeName("slurm_root", ENV)), true, "slurm volume kept");
    assert.equal(await exists("volume", volumeName("slurm_home", ENV)), true, "the volume of the users' homes kept");
    // The second up brings a changed ConfigMap: servers now stop themselves after a short idle time.
    doc.setIn(["data", "idleTimeout"], String(SHORT_IDLE_TIMEOUT));
    await writeFile(cmPath, doc.toString());
    // And it finds a database that an older JupyterHub wrote (as after an image upgrade): up backs
    // it up and runs the image's `jupyterhub upgrade-db` before the hub starts on it.
    const hubVolume = (await podman(["volume", "inspect", "--format", "{{.Mountpoint}}", volumeName("jupyterhub_root", ENV)])).out.trim();
    const record = join(hubVolume, "srv", "jupyterhub", "jupyterhub-db-version.json");
    const imageJupyterhub = (JSON.parse(await readFile(record, "utf8")) as { jupyterhub: string }).jupyterhub;
    await writeFile(record, `${JSON.stringify({ jupyterhub: "5.1.0", image_id: "" })}\n`);
    const secondUp = await h.timed("second up (upgrading the database first), hub healthy, Slurm ready", async () => {
      const text = await h.brics(["up", ENV, w.deployDir, "--no-build"]);
      await hubHealthy(base);
      await h.slurmReady();
      return text;
    });
    assert.match(secondUp, new RegExp(`the hub's database was written by JupyterHub 5\\.1\\.0 and the image has ${imageJupyterhub.replaceAll(".", "\\.")}: backing it up, then upgrading it`));
    const upgradeBackup = /backup: (\S+before-upgrade-5\.1\.0-to-\S+\.tar\.gz)/.exec(secondUp)?.[1];
    assert.ok(upgradeBackup, secondUp);
    assert.equal((await stat(join(w.dir, upgradeBackup)).catch(() => stat(upgradeBackup))).mode & 0o777, 0o600);
    assert.match(secondUp, new RegExp(`upgraded the hub's database from JupyterHub 5\\.1\\.0 to ${imageJupyterhub.replaceAll(".", "\\.")}`));
    assert.equal((JSON.parse(await readFile(record, "utf8")) as { jupyterhub: string }).jupyterhub, imageJupyterhub, "the record names the image's JupyterHub again");
    assert.equal(await hashesOfHubState(), stateBefore, "crypt key and cookie secret survived down/up");
    const again = await session.api("GET", `${base}hub/api/user`);
    assert.equal(again.status, 200, "the earlier login session is still valid: the hub database was kept");

    // 8b. The file the user saved before down is in their home, as the new server shows it.
    await h.spawnAndReach(session, base, user, options);
    const [idleJob] = await slurmJobs(SLURM);
    assert.ok(idleJob, "the second server runs as a job");
    const readBack = await contents(session, base, user, "survives-down-up.txt");
    assert.equal(readBack.status, 200, "the file is still there after down and up");
    assert.equal((JSON.parse(readBack.body) as { content: string }).content, saved);
    assert.equal((await sh(SLURM, `stat -c %U ${home}/survives-down-up.txt`)).trim(), unixUser, "and still the user's");

    // 8c. A server nobody uses stops itself: its job leaves the queue, the hub offers Start again.
    const idleSince = Date.now();
    await until("the idle server's job to leave the queue", SHORT_IDLE_TIMEOUT + 240, async () =>
      (await slurmJobs(SLURM)).length === 0 ? true : undefined,
    5000);
    h.record(`idle server (idleTimeout ${SHORT_IDLE_TIMEOUT} s) -> job gone`, seconds(idleSince));
    const jobLog = await sh(SLURM, `cat ${home}/jupyterhub_slurmspawner_${idleJob.id}.log`);
    assert.match(jobLog, /jupyterhub-singleuser ended gracefully/, "the server ended by itself, not by scancel");
    await until("the hub to show the server as stopped", POLL_INTERVAL * 6, async () => {
      const model = JSON.parse((await session.api("GET", `${base}hub/api/user`)).body) as { servers?: Record<string, unknown> };
      const homePage = await session.get(`${base}hub/home`);
      return Object.keys(model.servers ?? {}).length === 0 && /Start My Server/.test(visibleText(homePage.body)) && !/id="stop"/.test(homePage.body) ? true : undefined;
    }, 1000);

    // 9. Tearing down with a server running: down --force refuses; a backup is taken; with
    //    --stop-servers the hub stops it and its job leaves the queue before anything is removed.
    await h.spawnAndReach(session, base, user, options);
    const refusedDown = await bricsFailing(["down", ENV, w.deployDir, "--force"]);
    assert.equal(refusedDown.code, 1, refusedDown.output);
    assert.match(refusedDown.output, /1 user server is running or starting; --force would remove the hub's database, its only record of it, while its Slurm job runs in the pod's Slurm container and ends with it\. Nothing was removed\./);
    assert.equal(await exists("pod", POD), true, "the refused down removed nothing");
    const { archive: lastBackup } = await h.backup("brics-env backup (a server up, before down --force --stop-servers)");
    const queue = watchQueue();
    const stopped = await h.timed("brics-env down --force --stop-servers", () => h.brics(["down", ENV, w.deployDir, "--force", "--stop-servers"]));
    const seen = await queue.stop();
    assert.match(stopped, /stopped 1 user server through the hub \(alice\), cancelling its Slurm job/);
    assert.ok(seen.includes("jobs:1"), `the watch saw the server's job first: ${seen.join(" ")}`);
    assert.equal(seen.at(-1), "jobs:0", `no job was left in the queue when the Slurm container went: ${seen.slice(-5).join(" ")}`);
    h.podCreated(false);
    assert.deepEqual(await h.leftovers(), [], "nothing of the environment is left");

    // 10. A new start from the backup, as on a new host: restore, up; the user is still logged in,
    //     and the hub, told by Slurm that the recorded server's job is gone, offers Start again.
    const fromNothing = await h.timed("brics-env restore (nothing there)", () => h.brics(["restore", ENV, lastBackup, w.deployDir]));
    assert.match(fromNothing, /created volume jupyterhub_root_dev_dummyauth/);
    assert.match(fromNothing, /restored the hub's database \(1 user, their auth state, 1 server recorded as running\)/);
    h.podCreated(true);
    await h.timed("up after restore, hub healthy, Slurm ready", async () => {
      await h.brics(["up", ENV, w.deployDir, "--no-build"]);
      await hubHealthy(base);
      await h.slurmReady();
    });
    assert.equal((await session.api("GET", `${base}hub/api/user`)).status, 200, "the user is still logged in");
    await until("the hub to find the restored server's job gone", POLL_INTERVAL * 12, async () => {
      const homePage = await session.get(`${base}hub/home`);
      return /Start My Server/.test(visibleText(homePage.body)) && !/id="stop"/.test(homePage.body) ? true : undefined;
    }, 1000);
    await h.timed("brics-env down --force (nothing running)", () => h.brics(["down", ENV, w.deployDir, "--force"]));
    h.podCreated(false);
    assert.deepEqual(await h.leftovers(), [], "nothing of the environment is left");
  } catch (e) {
    process.stdout.write(`\n[stack] FAILED: ${String(e)}\n[stack] logs:\n${await collectLogs(HUB, SLURM)}\n`);
    throw e;
  }
});
