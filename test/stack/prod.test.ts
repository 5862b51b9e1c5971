/**
 * Tier 3: prod, the full combination: stage-prod images, an external Slurm host, Zenith ingress
 * and JWT login, offline.
 *
 * The external Slurm host is dev_dummyauth_extslurm's (slurmHost.ts), the Zenith server and client
 * stand-ins are dev_realauth_zenithclient's (zenithServer.ts), the tokens come from dev_realauth's
 * issuer (issuer.ts), run in the hub container. The test plays Zenith's proxy and auth layer: it
 * reaches the hub at the tunnel's allocated port with the X-Auth-Id-Token header. The user server
 * runs on the external host, registers with the hub through hubConnectUrl (the only port the pod
 * publishes) and answers through the tunnel and the proxy; it survives a hub restart.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Browser } from "./browser.js";
import { collectLogs, podman, sh } from "./podmanProbe.js";
import { hubHealthy, refusedOnLoopback, stackHarness } from "./harness.js";
import { configMapForIssuer, issuerLog, loggedInAs, login, projectChoices, startIssuer, TOKEN_ACCOUNT, tokenFromIssuer } from "./issuer.js";
import { ExternalSlurmHost } from "./slurmHost.js";
import { ZenithServer, zenithDeployFiles } from "./zenithServer.js";
import { podmanContainerName } from "../../src/plan/names.js";

const ENV = "prod" as const;
const CLIENT = podmanContainerName(ENV, "zenith-client");
const POLL_INTERVAL = 5;
const STARTUP_POLL_INTERVAL = 2;

const h = stackHarness(ENV);
const slurmHost = new ExternalSlurmHost("brics-stack-prod-slurm-host");
const zenith = new ZenithServer("brics-stack-prod-zenith-server");

test(`${ENV}: stage-prod images, external Slurm, Zenith ingress, JWT login; spawn, hub restart, tear down`, { timeout: 80 * 60_000 }, async () => {
  const w = h.workspace();
  let hostStarted = false;
  try {
    await slurmHost.preflight();
    await zenith.preflight();
    await h.timed("bootstrap base images", () => h.bootstrapBases());

    // The site's side: its Slurm host, and its Zenith server with the client's key registered.
    await h.timed("build the external Slurm host's image (brics_slurm stage-prod)", () => slurmHost.build(w));
    await h.timed("start the external Slurm host", () => slurmHost.start(h.atTeardown));
    hostStarted = true;
    await h.brics(["init", ENV, w.deployDir]);
    await configMapForIssuer(w.deployDir);
    const site = await slurmHost.provision(w.deployDir, [TOKEN_ACCOUNT]);
    const data = await h.initDeployDir({ ...site, pollInterval: String(POLL_INTERVAL), startupPollInterval: String(STARTUP_POLL_INTERVAL) });
    await zenithDeployFiles(h, zenith);
    await h.brics(["check", ENV, w.deployDir]);
    const base = data["baseUrl"] ?? "/";

    await h.timed("brics-env resources (hub stage-prod image build)", () => h.brics(["resources", ENV]));
    h.podCreated(true);
    const upOut = await h.timed("brics-env up (returns once the zenith-client ran 15 s without restarting)", () => h.brics(["up", ENV, w.deployDir, "--no-build"]));
    assert.match(upOut, new RegExp(`${CLIENT} running, no restart`), `up watched the Zenith client:\n${upOut}`);
    assert.match(await sh(h.hub, "echo $CONTAINER_ENV"), /^prod$/m, "the hub runs the stage-prod image");

    const tunnel = await zenith.tunnelUp("the Zenith tunnel");
    const origin = `http://127.0.0.1:${tunnel.allocated_port}`;
    await h.timed("hub healthy through the tunnel", () => hubHealthy(base, 300, origin));
    // The pod publishes the Hub API on hubConnectUrl's address and nothing else: no proxy port.
    const hubApi = new URL(site.hubConnectUrl);
    assert.deepEqual((await podman(["port", h.hub])).out.trim().split("\n"), [`8081/tcp -> ${hubApi.hostname}:${hubApi.port}`], "published ports");
    assert.ok(await refusedOnLoopback(8000), "nothing answers on 127.0.0.1:8000");

    // JWT login through the tunnel.
    await h.timed("issuer started in the hub container", () => startIssuer(h.hub));
    assert.equal((await login(new Browser(origin), base, undefined)).status, 401, "no token: 401");
    const browser = new Browser(origin);
    const accepted = await login(browser, base, await tokenFromIssuer(h.hub, "valid"));
    assert.equal(accepted.status, 302, `a valid token logs in (got ${accepted.status}: ${accepted.body.slice(0, 300)})`);
    const [user = "", project = ""] = TOKEN_ACCOUNT.split(".");
    assert.equal(await loggedInAs(browser, base), user, "logged in as the token's short_name");
    const form = await browser.get(`${base}hub/spawn`);
    assert.deepEqual(projectChoices(form), [`${project}.brics`], "the form lists the projects on bricsPlatform");

    // Spawn on the external host; the server registers through hubConnectUrl and answers through the tunnel.
    const options = { brics_project: `${project}.brics`, runtime: "01:00:00", ngpus: "1", partition: "", reservation: "" };
    h.record("spawn request -> server reachable through the tunnel", await h.spawnAndReach(browser, base, user, options));
    const job = await slurmHost.theJob(TOKEN_ACCOUNT);
    assert.equal(await slurmHost.hubApiUrlOfJob(TOKEN_ACCOUNT), `${site.hubConnectUrl}/hub/api`, "the server talks to the hub at hubConnectUrl");

    // The hub restarts with the server running: the tunnel stays, the server is found again.
    await slurmHost.survivesHubRestart(h, browser, base, user, job, POLL_INTERVAL);
    assert.equal((await zenith.tunnels()).length, 1, "the tunnel held through the hub restart");

    await slurmHost.stopFromHub(browser, base, user);

    await h.timed("brics-env down --force", () => h.brics(["down", ENV, w.deployDir, "--force"]));
    h.podCreated(false);
    assert.deepEqual(await h.leftovers(), [], "nothing of the environment is left");
    await zenith.remove();
    await slurmHost.remove();
    assert.deepEqual([await zenith.exists(), await slurmHost.exists()], [false, false], "the Zenith server and the Slurm host are removed");
  } catch (e) {
    process.stdout.write(`\n[stack] FAILED: ${String(e)}\n[stack] logs:\n${await collectLogs(h.hub, hostStarted ? slurmHost.name : h.slurm)}\n`);
    const client = await podman(["logs", "--tail", "60", CLIENT]);
    process.stdout.write(`----- zenith-client log (exit ${client.code}) -----\n${client.out}${client.err}\n`);
    process.stdout.write(await zenith.logs());
    process.stdout.write(await issuerLog(h.hub));
    throw e;
  }
});
