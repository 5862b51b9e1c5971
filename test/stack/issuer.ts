/**
 * A throw-away OIDC issuer for the JWT scenarios: the fixture `issuer.py` of the manual JWT check,
 * run inside the hub container so the hub reaches it on the pod's loopback; the deploy ConfigMap
 * points `oidcServer` at it. BricsAuthenticator fetches the issuer's discovery document and keys
 * at each login, not at start, so starting it right after `up` is early enough. Tokens go in
 * X-Auth-Id-Token, as Zenith's auth layer sends them.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseDocument } from "yaml";
import type { Browser, Page } from "./browser.js";
import { until } from "./harness.js";
import { podman, sh } from "./podmanProbe.js";
import { repoRoot } from "../../src/paths.js";

/** The issuer listens on the pod's loopback, which the hub container shares (the host's does not). */
const ISSUER_PORT = 8999;
export const ISSUER_URL = `http://127.0.0.1:${ISSUER_PORT}/realms/test`;
/** What issuer.py puts in its tokens: platform of proj1.brics, and the audience. */
export const PLATFORM = "brics.aip1.notebooks.shared";
export const AUDIENCE = "zenith-jupyter";
export const TOKEN_HEADER = "X-Auth-Id-Token";
/** The Unix account of the valid token's one project on the platform (proj1.brics). */
export const TOKEN_ACCOUNT = "alice.proj1";
const ISSUER_IN_HUB = "/tmp/brics-env-stack-issuer.py";
const TOKENS_IN_HUB = "/tmp/brics-env-stack-tokens";
const ISSUER_LOG = "/tmp/brics-env-stack-issuer.log";

/**
 * Starts issuer.py in the hub container; it writes its tokens (valid, expired, wrong_audience,
 * no_platform_project, …) and then serves its discovery document and keys. A token signed by a
 * key the issuer never published is made beside them: the valid token's claims, re-signed with
 * a fresh key under the same key id, so only the signature check can refuse it.
 */
export async function startIssuer(hub: string): Promise<void> {
  const cp = await podman(["cp", join(repoRoot(), "test", "fixtures", "python_packages", "tests", "jwt_login", "issuer.py"), `${hub}:${ISSUER_IN_HUB}`]);
  assert.equal(cp.code, 0, `podman cp issuer.py: ${cp.err}`);
  const started = await podman(["exec", "-d", hub, "sh", "-c", `exec python3 ${ISSUER_IN_HUB} ${ISSUER_PORT} ${TOKENS_IN_HUB} >${ISSUER_LOG} 2>&1`]);
  assert.equal(started.code, 0, `starting the issuer: ${started.err}`);
  await until("the issuer in the hub container", 60, async () => {
    const r = await podman(["exec", hub, "python3", "-c", `import urllib.request; urllib.request.urlopen("${ISSUER_URL}/certs", timeout=3)`]);
    return r.code === 0 ? true : undefined;
  });
  await sh(
    hub,
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

export async function tokenFromIssuer(hub: string, name: string): Promise<string> {
  return (await sh(hub, `cat ${TOKENS_IN_HUB}/${name}.jwt`)).trim();
}

export async function issuerLog(hub: string): Promise<string> {
  const r = await podman(["exec", hub, "cat", ISSUER_LOG]);
  return `----- issuer log (exit ${r.code}) -----\n${r.out}${r.err}\n`;
}

/**
 * Fills the JWT placeholders of the deploy ConfigMap `init` wrote in `deployDir` for this issuer;
 * returns the ConfigMap's data.
 */
export async function configMapForIssuer(deployDir: string): Promise<Record<string, string>> {
  const cmPath = join(deployDir, "deploy-configmap.yaml");
  const doc = parseDocument(await readFile(cmPath, "utf8"));
  doc.setIn(["data", "oidcServer"], ISSUER_URL);
  doc.setIn(["data", "bricsPlatform"], PLATFORM);
  doc.setIn(["data", "jwtAudience"], AUDIENCE);
  await writeFile(cmPath, doc.toString());
  return doc.toJS().data as Record<string, string>;
}

/** GET /hub/login as the Zenith tunnel forwards it: with the identity token, or without one. */
export function login(browser: Browser, base: string, token: string | undefined): Promise<Page> {
  return browser.raw("GET", `${base}hub/login`, token === undefined ? {} : { headers: { [TOKEN_HEADER]: token } });
}

export async function loggedInAs(browser: Browser, base: string): Promise<string | undefined> {
  const me = await browser.api("GET", `${base}hub/api/user`);
  return me.status === 200 ? (JSON.parse(me.body) as { name: string }).name : undefined;
}

/** The option values of the spawn form's project select. */
export function projectChoices(form: Page): string[] {
  const select = /<select name="brics_project"[^>]*>([\s\S]*?)<\/select>/.exec(form.body);
  assert.ok(select, "the spawn form has a brics_project select");
  return [...(select[1] ?? "").matchAll(/<option value="([^"]*)"(?![^>]*disabled)/g)].map((m) => m[1] ?? "");
}
