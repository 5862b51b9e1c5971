/**
 * Tier 3: dev_realauth_zenithclient, JupyterHub reached only through a Zenith tunnel, offline.
 *
 * The pod's zenith-client container is the product's, with the image from the override
 * BRICS_ENV_ZENITH_CLIENT_IMAGE: the client stand-in (test/fixtures/zenith_client), or with
 * BRICS_ENV_TEST_ZENITH_CLIENT_IMAGE any other image, such as one built from the real client.
 * The Zenith server is a stand-in in a container of its own (zenithServer.ts): sshd for `zenith`
 * whose forced command speaks the tunnel handshake and records what it received. The test then
 * plays Zenith's proxy and auth layer: it reaches the hub at the allocated port and adds the
 * X-Auth-Id-Token header, with tokens from the throw-away issuer of dev_realauth (issuer.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Browser, formAction } from "./browser.js";
import { collectLogs, podman, slurmJobs } from "./podmanProbe.js";
import { hubHealthy, refusedOnLoopback, seconds, serverStatus, stackHarness, until } from "./harness.js";
import { configMapForIssuer, ISSUER_URL, issuerLog, loggedInAs, login, projectChoices, startIssuer, tokenFromIssuer } from "./issuer.js";
import { restartCount, startedAt, ZenithServer, zenithClientConfig, zenithDeployFiles } from "./zenithServer.js";
import { podName, podmanContainerName } from "../../src/plan/names.js";

const ENV = "dev_realauth_zenithclient" as const;
const POD = podName(ENV);
const HUB = podmanContainerName(ENV, "jupyterhub");
const SLURM = podmanContainerName(ENV, "slurm");
const CLIENT = podmanContainerName(ENV, "zenith-client");

const h = stackHarness(ENV);
const server = new ZenithServer("brics-stack-zenith-server");

test(`${ENV}: the hub through a Zenith tunnel (JWT login, spawn, server restart), nothing published, tear down`, { timeout: 60 * 60_000 }, async () => {
  const w = h.workspace();
  try {
    await server.preflight();
    await h.timed("bootstrap base images", () => h.bootstrapBases());

    // The deploy directory as a site makes it: ConfigMap from init, the Zenith key registered with
    // the server (here: authorised by the stand-in), the client configuration pointing at it.
    await h.brics(["init", ENV, w.deployDir]);
    const data = await configMapForIssuer(w.deployDir);
    const base = data["baseUrl"] ?? "/";
    const address = await zenithDeployFiles(h, server);
    await h.brics(["check", ENV, w.deployDir]);

    await h.timed("brics-env resources (image builds)", () => h.brics(["resources", ENV]));
    h.podCreated(true);
    const upOut = await h.timed("brics-env up (returns once the zenith-client ran 15 s without restarting)", () => h.brics(["up", ENV, w.deployDir, "--no-build"]));
    assert.match(upOut, new RegExp(`${CLIENT} running, no restart`), `up watched the Zenith client:\n${upOut}`);
    assert.doesNotMatch(upOut, /keeps restarting/);

    // The tunnel: the handshake as the client speaks it, recorded by the server.
    const tunnel = await server.tunnelUp("the Zenith tunnel");
    h.record("zenith-client started -> tunnel configured at the server", Math.round(tunnel.received_at * 10 - (await startedAt(CLIENT)) / 100) / 10);
    // Older clients also send skip_auth: false; newer ones send only what is set.
    const { skip_auth: skipAuth = false, ...sent } = tunnel.config;
    assert.equal(skipAuth, false, "the tunnel asks Zenith to authenticate");
    assert.deepEqual(
      sent,
      {
        allocated_port: tunnel.allocated_port,
        backend_protocol: "http",
        auth_oidc_issuer: ISSUER_URL,
        auth_oidc_client_id: "jupyterhub",
        auth_oidc_client_secret: "stack-test-not-a-secret",
      },
      "the client sent the configuration of zenith_client_config.yaml",
    );
    let origin = `http://127.0.0.1:${tunnel.allocated_port}`;
    await h.timed("hub healthy through the tunnel", () => hubHealthy(base, 300, origin));

    // Nothing of the pod is published on the host: the proxy is reached through the tunnel only.
    const ports = await podman(["ps", "--filter", `pod=${POD}`, "--format", "{{.Names}} {{.Ports}}"]);
    for (const line of ports.out.split("\n").filter((l) => l.trim() !== "")) {
      assert.doesNotMatch(line, /->/, `no published port in the pod: ${line}`);
    }
    assert.ok(await refusedOnLoopback(8000), "nothing answers on 127.0.0.1:8000");

    // Zenith's auth layer adds the identity token; the hub logs in its short_name.
    await h.timed("issuer started in the hub container", () => startIssuer(HUB));
    assert.equal((await login(new Browser(origin), base, undefined)).status, 401, "no token: 401");
    const browser = new Browser(origin);
    const accepted = await login(browser, base, await tokenFromIssuer(HUB, "valid"));
    assert.equal(accepted.status, 302, `a valid token logs in (got ${accepted.status}: ${accepted.body.slice(0, 300)})`);
    assert.equal(await loggedInAs(browser, base), "alice", "logged in as the token's short_name");
    const form = await browser.get(`${base}hub/spawn`);
    assert.equal(form.status, 200, "spawn form");
    assert.deepEqual(projectChoices(form), ["proj1.brics"], "the form lists the projects on bricsPlatform");

    await h.timed("  + wait for the Slurm container", () => h.slurmReady());
    const spawnStarted = Date.now();
    const posted = await browser.postForm(formAction(form), { brics_project: "proj1.brics", runtime: "01:00:00", ngpus: "1", partition: "", reservation: "" }, false);
    assert.equal(posted.status, 302, `spawn accepted (got ${posted.status}: ${/alert[^>]*>([^<]*)/.exec(posted.body)?.[1] ?? ""})`);
    const status = await until("the user's server through the tunnel", 420, () => serverStatus(browser, base, "alice"), 2000);
    h.record("spawn request -> server reachable through the tunnel", seconds(spawnStarted));
    h.log(`server reachable: ${JSON.stringify(status)}`);
    const jobs = await slurmJobs(SLURM);
    assert.deepEqual(jobs.map((j) => [j.state, j.user]), [["RUNNING", "alice.proj1"]], `one job, as alice.proj1: ${JSON.stringify(jobs)}`);

    // The Zenith server restarts: the client's ssh ends, podman restarts the client, the tunnel
    // comes back (on a port the server allocates anew) and the running server is reachable again.
    const restartsBefore = await restartCount(CLIENT);
    const restarted = Date.now();
    await server.restart();
    const again = await server.tunnelUp("the tunnel after the Zenith server restarted", tunnel);
    origin = `http://127.0.0.1:${again.allocated_port}`;
    await hubHealthy(base, 120, origin);
    h.record("Zenith server restart -> tunnel back, hub healthy", seconds(restarted));
    assert.ok((await restartCount(CLIENT)) > restartsBefore, "the client came back by being restarted, as the real one does");
    const later = new Browser(origin);
    assert.equal((await login(later, base, await tokenFromIssuer(HUB, "valid"))).status, 302, "login through the new tunnel");
    // The hub's page first: its _xsrf cookie is the one the hub API wants (the user server sets its own).
    assert.equal((await later.get(`${base}hub/home`)).status, 200, "hub home through the new tunnel");
    await until("the user's server through the new tunnel", 120, () => serverStatus(later, base, "alice"), 2000);
    assert.equal((await slurmJobs(SLURM)).length, 1, "the job ran on through the outage");

    const stop = await later.api("DELETE", `${base}hub/api/users/alice/server`);
    assert.ok([202, 204].includes(stop.status), `stop accepted (got ${stop.status}: ${stop.body})`);
    await until("the job to leave the queue", 90, async () => ((await slurmJobs(SLURM)).length === 0 ? true : undefined));

    // A tunnel that cannot be made: up says so (the server refuses connections on port 23).
    await h.brics(["down", ENV, w.deployDir]);
    h.podCreated(false);
    await writeFile(join(w.deployDir, "zenith_client_config.yaml"), zenithClientConfig(address, 23), { mode: 0o600 });
    h.podCreated(true);
    const badUp = await h.timed("brics-env up with an unreachable Zenith server (warns)", () => h.brics(["up", ENV, w.deployDir, "--no-build"]));
    assert.match(badUp, new RegExp(`${CLIENT} keeps restarting \\(\\d+ restarts? in \\d+ s\\): the Zenith tunnel is not up`), `up warned:\n${badUp}`);

    await h.timed("brics-env down --force --stop-servers", () => h.brics(["down", ENV, w.deployDir, "--force", "--stop-servers"]));
    h.podCreated(false);
    assert.deepEqual(await h.leftovers(), [], "nothing of the environment is left");
    await server.remove();
    assert.equal(await server.exists(), false, "the Zenith server stand-in is removed");
  } catch (e) {
    process.stdout.write(`\n[stack] FAILED: ${String(e)}\n[stack] logs:\n${await collectLogs(HUB, SLURM)}\n`);
    const client = await podman(["logs", "--tail", "60", CLIENT]);
    process.stdout.write(`----- zenith-client log (exit ${client.code}) -----\n${client.out}${client.err}\n`);
    process.stdout.write(await server.logs());
    process.stdout.write(await issuerLog(HUB));
    throw e;
  }
});
