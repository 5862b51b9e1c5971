/**
 * Tier 3: dev_realauth, the real BricsAuthenticator behind OUR jupyterhub_config.py, offline.
 *
 * A throw-away OIDC issuer (the fixture `issuer.py` of the manual JWT check) runs inside the hub
 * container, so the hub reaches it on the pod's loopback; the deploy ConfigMap points
 * `oidcServer` at it. BricsAuthenticator fetches the issuer's discovery document and keys at each
 * login, not at start, so starting the issuer right after `up` is early enough. Tokens are sent
 * in X-Auth-Id-Token as the Zenith tunnel sends them; the refusals asserted are the ones our
 * config selects (invalid_jwt_logout: a bad token is sent to /hub/logout). A valid login then
 * spawns a server as a Slurm job for the project the token grants.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { Browser, formAction, type Page } from "./browser.js";
import { collectLogs, podman, sh, slurmJobs } from "./podmanProbe.js";
import { ORIGIN, seconds, serverStatus, stackHarness, until } from "./harness.js";
import { BASES } from "../../src/effects/bootstrap.js";
import { repoRoot } from "../../src/paths.js";
import { podmanContainerName } from "../../src/plan/names.js";

const ENV = "dev_realauth" as const;
const HUB = podmanContainerName(ENV, "jupyterhub");
const SLURM = podmanContainerName(ENV, "slurm");

/** The issuer listens on the pod's loopback, which the hub container shares (the host's does not). */
const ISSUER_PORT = 8999;
const ISSUER_URL = `http://127.0.0.1:${ISSUER_PORT}/realms/test`;
/** What issuer.py puts in its tokens: platform of proj1.brics, and the audience. */
const PLATFORM = "brics.aip1.notebooks.shared";
const AUDIENCE = "zenith-jupyter";
const ISSUER_IN_HUB = "/tmp/brics-env-stack-issuer.py";
const TOKENS_IN_HUB = "/tmp/brics-env-stack-tokens";
const TOKEN_HEADER = "X-Auth-Id-Token";

const h = stackHarness(ENV);

/**
 * Starts issuer.py in the hub container; it writes its tokens (valid, expired, wrong_audience,
 * no_platform_project, …) and then serves its discovery document and keys. A token signed by a
 * key the issuer never published is made beside them: the valid token's claims, re-signed with
 * a fresh key under the same key id, so only the signature check can refuse it.
 */
async function startIssuer(): Promise<void> {
  const cp = await podman(["cp", join(repoRoot(), "test", "fixtures", "python_packages", "tests", "jwt_login", "issuer.py"), `${HUB}:${ISSUER_IN_HUB}`]);
  assert.equal(cp.code, 0, `podman cp issuer.py: ${cp.err}`);
  const started = await podman([
    "exec",
    "-d",
    HUB,
    "sh",
    "-c",
    `exec python3 ${ISSUER_IN_HUB} ${ISSUER_PORT} ${TOKENS_IN_HUB} >/tmp/brics-env-stack-issuer.log 2>&1`,
  ]);
  assert.equal(started.code, 0, `starting the issuer: ${started.err}`);
  await until("the issuer in the hub container", 60, async () => {
    const r = await podman(["exec", HUB, "python3", "-c", `import urllib.request; urllib.request.urlopen("${ISSUER_URL}/certs", timeout=3)`]);
    return r.code === 0 ? true : undefined;
  });
  await sh(
    HUB,
    `python3 - <<'EOF'
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
claims = jwt.decode(open("${TOKENS_IN_HUB}/valid.jwt").read(), options={"verify_signature": False})
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
header = jwt.get_unverified_header(open("${TOKENS_IN_HUB}/valid.jwt").read())
open("${TOKENS_IN_HUB}/other_key.jwt", "w").write(jwt.encode(claims, key, algorithm="RS256", headers={"kid": header["kid"]}))
EOF`,
  );
}

async function tokenFromIssuer(name: string): Promise<string> {
  return (await sh(HUB, `cat ${TOKENS_IN_HUB}/${name}.jwt`)).trim();
}

/** GET /hub/login as the Zenith tunnel forwards it: with the identity token, or without one. */
function login(browser: Browser, base: string, token: string | undefined): Promise<Page> {
  return browser.raw("GET", `${base}hub/login`, token === undefined ? {} : { headers: { [TOKEN_HEADER]: token } });
}

async function loggedInAs(browser: Browser, base: string): Promise<string | undefined> {
  const me = await browser.api("GET", `${base}hub/api/user`);
  return me.status === 200 ? (JSON.parse(me.body) as { name: string }).name : undefined;
}

/** The option values of the spawn form's project select. */
function projectChoices(form: Page): string[] {
  const select = /<select name="brics_project"[^>]*>([\s\S]*?)<\/select>/.exec(form.body);
  assert.ok(select, "the spawn form has a brics_project select");
  return [...(select[1] ?? "").matchAll(/<option value="([^"]*)"(?![^>]*disabled)/g)].map((m) => m[1] ?? "");
}

test(`${ENV}: JWT login through our jupyterhub_config.py, projects from the token, spawn, tear down`, { timeout: 60 * 60_000 }, async () => {
  const w = h.workspace();
  try {
    await h.timed("bootstrap base images", () => h.brics(["bootstrap-bases"]));
    for (const b of BASES) w.env[b.envVar] = b.image;

    // The ConfigMap's placeholders, filled for the issuer on the pod's loopback.
    await h.brics(["init", ENV, w.deployDir]);
    const cmPath = join(w.deployDir, "deploy-configmap.yaml");
    const doc = parseDocument(await readFile(cmPath, "utf8"));
    doc.setIn(["data", "oidcServer"], ISSUER_URL);
    doc.setIn(["data", "bricsPlatform"], PLATFORM);
    doc.setIn(["data", "jwtAudience"], AUDIENCE);
    await writeFile(cmPath, doc.toString());
    await h.brics(["check", ENV, w.deployDir]);
    const data = doc.toJS().data as Record<string, string>;
    const base = data["baseUrl"] ?? "/";
    // issuer.py's tokens are alice's: proj1.brics on the platform, proj2.brics not.
    const devUsers = (data["devUsers"] ?? "").split(/\s+/);
    assert.ok(devUsers.includes("alice.proj1"), `devUsers has the token's account alice.proj1: ${data["devUsers"]}`);

    await h.timed("brics-env resources (image builds)", () => h.brics(["resources", ENV]));
    h.podCreated(true);
    await h.timed("brics-env up (returns when the hub is healthy)", () => h.brics(["up", ENV, w.deployDir, "--no-build"]));
    await h.timed("issuer started in the hub container", startIssuer);

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
      const r = await login(b, base, await tokenFromIssuer(name));
      // Our config sets invalid_jwt_logout: a bad token goes to logout (and on to the proxy's sign-out).
      assert.equal(r.status, 302, `${name}: refused with a redirect (got ${r.status})`);
      assert.equal(new URL(r.headers.get("location") ?? "", ORIGIN).pathname, `${base}hub/logout`, `${name}: redirected to logout`);
      assert.equal(await loggedInAs(b, base), undefined, `${name}: not logged in`);
    }
    const noPlatform = new Browser(ORIGIN);
    assert.equal((await login(noPlatform, base, await tokenFromIssuer("no_platform_project"))).status, 403, "no project on the platform: 403");
    assert.equal(await loggedInAs(noPlatform, base), undefined, "no project on the platform: not logged in");

    // A valid token logs in its short_name.
    const browser = new Browser(ORIGIN);
    const accepted = await login(browser, base, await tokenFromIssuer("valid"));
    assert.equal(accepted.status, 302, `a valid token logs in (got ${accepted.status}: ${accepted.body.slice(0, 300)})`);
    assert.equal(await loggedInAs(browser, base), "alice", "logged in as the token's short_name");
    const jsonProjects = new Browser(ORIGIN);
    assert.equal((await login(jsonProjects, base, await tokenFromIssuer("valid_json_projects"))).status, 302, "a JSON-encoded projects claim logs in");

    // The options form offers exactly the token's projects on the platform.
    const form = await browser.get(`${base}hub/spawn`);
    assert.equal(form.status, 200, "spawn form");
    assert.deepEqual(projectChoices(form), ["proj1.brics"], "the form lists the projects on bricsPlatform, no others");

    // Spawn for that project: the job runs as the account the token names for it.
    await h.timed("  + wait for the Slurm container", () => h.slurmReady());
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

    await h.timed("brics-env down --force", () => h.brics(["down", ENV, w.deployDir, "--force"]));
    h.podCreated(false);
    assert.deepEqual(await h.leftovers(), [], "nothing of the environment is left");
  } catch (e) {
    process.stdout.write(`\n[stack] FAILED: ${String(e)}\n[stack] logs:\n${await collectLogs(HUB, SLURM)}\n`);
    const issuerLog = await podman(["exec", HUB, "cat", "/tmp/brics-env-stack-issuer.log"]);
    process.stdout.write(`----- issuer log (exit ${issuerLog.code}) -----\n${issuerLog.out}${issuerLog.err}\n`);
    throw e;
  }
});
