/**
 * Tier 3: dev_realauth, the real BricsAuthenticator behind OUR jupyterhub_config.py, offline.
 *
 * A throw-away OIDC issuer runs inside the hub container (issuer.ts). Tokens are sent in
 * X-Auth-Id-Token as the Zenith tunnel sends them; the refusals asserted are the ones our
 * config selects (invalid_jwt_logout: a bad token is sent to /hub/logout). A valid login then
 * spawns a server as a Slurm job for the project the token grants.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Browser, formAction, visibleText } from "./browser.js";
import { collectLogs, podman, sh, slurmJobs } from "./podmanProbe.js";
import { ORIGIN, seconds, serverStatus, stackHarness, until } from "./harness.js";
import { configMapForIssuer, issuerLog, loggedInAs, login, projectChoices, startIssuer, tokenFromIssuer } from "./issuer.js";
import { BASES } from "../../src/plan/bootstrapBases.js";
import { podmanContainerName } from "../../src/plan/names.js";

const ENV = "dev_realauth" as const;
const HUB = podmanContainerName(ENV, "jupyterhub");
const SLURM = podmanContainerName(ENV, "slurm");

const h = stackHarness(ENV);

test(`${ENV}: JWT login through our jupyterhub_config.py, projects from the token, spawn, tear down`, { timeout: 60 * 60_000 }, async () => {
  const w = h.workspace();
  try {
    await h.timed("bootstrap base images", () => h.brics(["bootstrap-bases"]));
    for (const b of BASES) w.env[b.envVar] = b.image;

    // The ConfigMap's placeholders, filled for the issuer on the pod's loopback.
    await h.brics(["init", ENV, w.deployDir]);
    const data = await configMapForIssuer(w.deployDir);
    await h.brics(["check", ENV, w.deployDir]);
    const base = data["baseUrl"] ?? "/";
    // issuer.py's tokens are alice's: proj1.brics on the platform, proj2.brics not.
    const devUsers = (data["devUsers"] ?? "").split(/\s+/);
    assert.ok(devUsers.includes("alice.proj1"), `devUsers has the token's account alice.proj1: ${data["devUsers"]}`);

    await h.timed("brics-env resources (image builds)", () => h.brics(["resources", ENV]));
    h.podCreated(true);
    await h.timed("brics-env up (returns when the hub is healthy)", () => h.brics(["up", ENV, w.deployDir, "--no-build"]));
    await h.timed("issuer started in the hub container", () => startIssuer(HUB));

    // The hub config against the packages installed in the image: every setting recognised (the
    // hub started), and a ConfigMap value that does not convert stops it with one message naming the key.
    assert.doesNotMatch(await sh(HUB, "cat /var/log/jupyterhub/jupyterhub.log"), /not recognized/, "JupyterHub recognised every setting");
    const loadConfig = "from traitlets.config.loader import PyFileConfigLoader as L; L('jupyterhub_config.py', path='/etc/jupyterhub').load_config()";
    assert.equal((await podman(["exec", HUB, "python3", "-c", loadConfig])).code, 0, "the config loads as the hub loads it");
    const bad = await podman(["exec", HUB, "env", "DEPLOY_CONFIG_POLL_INTERVAL=soon", "python3", "-c", loadConfig]);
    assert.notEqual(bad.code, 0, "an unconvertible value stops the config");
    assert.match(bad.err, /^jupyterhub_config\.py: .*\n  - deploy-config key pollInterval \(DEPLOY_CONFIG_POLL_INTERVAL\) = 'soon' is not a whole number of seconds$/m);
    assert.doesNotMatch(bad.err, /Traceback/, "one message, not a traceback");

    // Refusals, each in a fresh browser: nothing may leave a login session behind.
    const noToken = new Browser(ORIGIN);
    assert.equal((await login(noToken, base, undefined)).status, 401, "no token: 401");
    assert.equal(await loggedInAs(noToken, base), undefined, "no token: not logged in");
    for (const name of ["expired", "wrong_audience", "other_key"]) {
      const b = new Browser(ORIGIN);
      const r = await login(b, base, await tokenFromIssuer(HUB, name));
      // Our config sets invalid_jwt_logout: a bad token goes to logout (and on to the proxy's sign-out).
      assert.equal(r.status, 302, `${name}: refused with a redirect (got ${r.status})`);
      assert.equal(new URL(r.headers.get("location") ?? "", ORIGIN).pathname, `${base}hub/logout`, `${name}: redirected to logout`);
      assert.equal(await loggedInAs(b, base), undefined, `${name}: not logged in`);
    }
    const noPlatform = new Browser(ORIGIN);
    assert.equal((await login(noPlatform, base, await tokenFromIssuer(HUB, "no_platform_project"))).status, 403, "no project on the platform: 403");
    assert.equal(await loggedInAs(noPlatform, base), undefined, "no project on the platform: not logged in");

    // A valid token logs in its short_name.
    const browser = new Browser(ORIGIN);
    const accepted = await login(browser, base, await tokenFromIssuer(HUB, "valid"));
    assert.equal(accepted.status, 302, `a valid token logs in (got ${accepted.status}: ${accepted.body.slice(0, 300)})`);
    assert.equal(await loggedInAs(browser, base), "alice", "logged in as the token's short_name");
    const jsonProjects = new Browser(ORIGIN);
    assert.equal((await login(jsonProjects, base, await tokenFromIssuer(HUB, "valid_json_projects"))).status, 302, "a JSON-encoded projects claim logs in");

    // The options form offers exactly the token's projects on the platform.
    const form = await browser.get(`${base}hub/spawn`);
    assert.equal(form.status, 200, "spawn form");
    assert.deepEqual(projectChoices(form), ["proj1.brics"], "the form lists the projects on bricsPlatform, no others");

    // Spawn for that project: the job runs as the account the token names for it.
    await h.timed("  + wait for the Slurm container", () => h.slurmReady());

    // Values the form does not offer (a crafted POST) are refused on the form, in one sentence.
    for (const [field, value, told] of [
      ["runtime", "23:59:59", "The job duration '23:59:59' is not one the spawn form offers (1h, 2h, 4h, 8h)"],
      ["ngpus", "9", "The number of GPUs '9' is not one the spawn form offers (1, 2, 3, 4)"],
    ] as const) {
      const crafted = { brics_project: "proj1.brics", runtime: "01:00:00", ngpus: "1", partition: "", reservation: "", [field]: value };
      const refused = await browser.postForm(formAction(await browser.get(`${base}hub/spawn`)), crafted, false);
      assert.equal(refused.status, 200, `${field}=${value}: the form again, not a spawn (got ${refused.status})`);
      assert.ok(visibleText(refused.body).includes(`${told}, so your server was not started; choose again from the form.`), `${field}=${value}: ${visibleText(refused.body).slice(0, 600)}`);
    }
    assert.deepEqual(await slurmJobs(SLURM), [], "no job for a refused form");

    // An identity token whose projects claim names a hostile account: the spawn is refused with
    // one sentence, nothing runs on either side (no ssh login, no file the account would create).
    const logins = async () => ((await sh(SLURM, "cat /var/log/sshd.log")).match(/Accepted publickey for jupyterspawner/g) ?? []).length;
    const loginsBefore = await logins();
    for (const name of ["semicolon", "substitution"]) {
      const mallory = new Browser(ORIGIN);
      assert.equal((await login(mallory, base, await tokenFromIssuer(HUB, `hostile_account_${name}`))).status, 302, `${name}: the token itself is valid`);
      const hostileForm = await mallory.get(`${base}hub/spawn`);
      assert.deepEqual(projectChoices(hostileForm), ["proj1.brics"]);
      const refused = await mallory.postForm(formAction(hostileForm), { brics_project: "proj1.brics", runtime: "01:00:00", ngpus: "1", partition: "", reservation: "" }, false);
      assert.equal(refused.status, 200, `${name}: the form again, not a spawn (got ${refused.status})`);
      assert.match(
        visibleText(refused.body),
        /The identity provider named the account '[^']*' for this project, which is not an account name <USER>\.<PROJECT> \(.*\), so your server was not started; please tell the service's administrators\./,
        `${name}: one readable sentence`,
      );
    }
    for (const container of [HUB, SLURM]) {
      assert.equal((await podman(["exec", container, "test", "-e", "/tmp/brics-env-pwned"])).code, 1, `nothing ran in ${container}`);
    }
    assert.equal(await logins(), loginsBefore, "the hub did not even log in to the Slurm host");
    assert.deepEqual(await slurmJobs(SLURM), [], "no job for a hostile account");
    const spawnStarted = Date.now();
    const posted = await browser.postForm(
      formAction(form),
      { brics_project: "proj1.brics", runtime: "01:00:00", ngpus: "1", partition: "", reservation: "" },
      false,
    );
    assert.equal(posted.status, 302, `spawn accepted (got ${posted.status}: ${/alert[^>]*>([^<]*)/.exec(posted.body)?.[1] ?? ""})`);
    const status = await until("the user's server behind the proxy", 420, () => serverStatus(browser, base, "alice"), 2000);
    h.record("spawn request -> server reachable", seconds(spawnStarted));
    h.log(`server reachable after ${seconds(spawnStarted)} s: ${JSON.stringify(status)}`);
    const jobs = await slurmJobs(SLURM);
    assert.deepEqual(jobs.map((j) => [j.state, j.user]), [["RUNNING", "alice.proj1"]], `one job, as alice.proj1: ${JSON.stringify(jobs)}`);
    const stop = await browser.api("DELETE", `${base}hub/api/users/alice/server`);
    assert.ok([202, 204].includes(stop.status), `stop accepted (got ${stop.status}: ${stop.body})`);
    await until("the job to leave the queue", 90, async () => ((await slurmJobs(SLURM)).length === 0 ? true : undefined));

    // Logout ends the hub session and sends the browser on to the identity proxy's sign-out.
    const out = await browser.raw("GET", `${base}hub/logout`);
    assert.equal(out.status, 302, `logout redirects (got ${out.status})`);
    const prefix = base.replace(/\/$/, "");
    assert.equal(out.headers.get("location"), `${prefix}/_oidc/sign_out?rd=${encodeURIComponent(`${prefix}/`)}`, "logout goes to the proxy's sign-out");
    assert.equal(await loggedInAs(browser, base), undefined, "logged out");

    await h.timed("brics-env down --force --stop-servers", () => h.brics(["down", ENV, w.deployDir, "--force", "--stop-servers"]));
    h.podCreated(false);
    assert.deepEqual(await h.leftovers(), [], "nothing of the environment is left");
  } catch (e) {
    process.stdout.write(`\n[stack] FAILED: ${String(e)}\n[stack] logs:\n${await collectLogs(HUB, SLURM)}\n`);
    process.stdout.write(await issuerLog(HUB));
    throw e;
  }
});
