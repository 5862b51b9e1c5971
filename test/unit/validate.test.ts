import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ENVIRONMENTS, getEnvironment } from "../../src/plan/environments.js";
import { createHmac } from "node:crypto";
import { parseKnownHosts, patternsMatch, wildcardMatch } from "../../src/plan/sshFormats.js";
import { formatProblem, hasErrors, hubApiAddressProblems, validateDeployDir, type Problem } from "../../src/plan/validate.js";
import { KEY_A, KEY_B, KEY_C, KEY_ENCRYPTED, KEY_RSA_PEM } from "./fixtureKeys.js";
import { configMapText, goodFilesFor, goodValuesFor, ZENITH_CONFIG } from "./helpers.js";

const DIR = "/deploy";

/** A hashed host pattern as `ssh-keygen -H` writes it: |1|salt|HMAC-SHA1(salt, name), base64. */
function hashHostName(name: string, salt: Buffer): string {
  return `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
}

function run(envName: string, opts: { values?: Record<string, string | undefined>; raw?: Record<string, string>; text?: string; files?: Record<string, string | undefined>; derived?: Record<string, string> } = {}): Problem[] {
  const env = getEnvironment(envName);
  const values = { ...goodValuesFor(env), ...opts.values };
  for (const k of Object.keys(values)) if (values[k] === undefined) delete values[k];
  return validateDeployDir(env, {
    dir: DIR,
    configMapText: "text" in opts ? opts.text : configMapText(values as Record<string, string>, opts.raw),
    files: { ...goodFilesFor(env), ...opts.files },
    ...(opts.derived ? { derivedPublicKeys: opts.derived } : {}),
  }).problems;
}

/** 1-based line of the last `key:` entry of a ConfigMap text (lines move as keys are added to the schema). */
const lastLineOf = (text: string, key: string) =>
  text.split("\n").reduce((found, l, i) => (l.trimStart().startsWith(`${key}:`) ? i + 1 : found), 0);

const errorsOf = (ps: Problem[]) => ps.filter((p) => p.severity === "error");
const warningsOf = (ps: Problem[]) => ps.filter((p) => p.severity === "warning");

describe("validateDeployDir", () => {
  for (const env of ENVIRONMENTS) {
    it(`accepts a good deploy directory for ${env.name} without any remark`, () => {
      assert.deepEqual(run(env.name), []);
    });
  }

  it("reports a missing ConfigMap with the command that makes it", () => {
    const [p] = run("dev_dummyauth", { text: undefined });
    assert.equal(p!.file, "/deploy/deploy-configmap.yaml");
    assert.match(p!.expected!, /brics-env init dev_dummyauth/);
  });

  it("reports YAML syntax errors with their line", () => {
    const ps = run("dev_dummyauth", { text: "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: [unclosed\n  b: x\n" });
    assert.ok(hasErrors(ps));
    assert.ok(ps[0]!.line !== undefined && ps[0]!.line >= 4, JSON.stringify(ps));
  });

  it("checks the ConfigMap's shape", () => {
    const text = "apiVersion: apps/v1\nkind: Secret\nmetadata:\n  name: other\ndata:\n  logLevel: INFO\n";
    const keys = errorsOf(run("dev_dummyauth", { text })).map((p) => p.key);
    for (const k of ["apiVersion", "kind", "metadata.name"]) assert.ok(keys.includes(k), k);
    // Upstream's examples say core/v1: podman plays it, Kubernetes does not, so a warning only.
    const core = run("dev_dummyauth", { text: configMapText(goodValuesFor(getEnvironment("dev_dummyauth"))).replace("apiVersion: v1", "apiVersion: core/v1") });
    assert.deepEqual(core.map((p) => [p.severity, p.key]), [["warning", "apiVersion"]]);
    assert.ok(hasErrors(run("dev_dummyauth", { text: "- a\n- b\n" })));
    assert.ok(hasErrors(run("dev_dummyauth", { text: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deploy-config}\ndata: [1]\n" })));
    const two = configMapText(goodValuesFor(getEnvironment("dev_dummyauth"))) + "---\n" + "apiVersion: v1\nkind: ConfigMap\n";
    assert.match(errorsOf(run("dev_dummyauth", { text: two }))[0]!.message, /2 YAML documents/);
  });

  it("reports duplicate keys with their line, and an empty file", () => {
    const text = configMapText(goodValuesFor(getEnvironment("dev_dummyauth")), { baseUrl: '"/other/"' });
    const ps = errorsOf(run("dev_dummyauth", { text }));
    assert.equal(ps.length, 1);
    assert.match(ps[0]!.message, /not valid YAML/);
    assert.equal(ps[0]!.line, lastLineOf(text, "baseUrl"));
    assert.match(errorsOf(run("dev_dummyauth", { text: "" }))[0]!.message, /0 YAML documents/);
  });

  it("refuses YAML aliases and merge keys, naming their lines", () => {
    const values = goodValuesFor(getEnvironment("dev_dummyauth"));
    const alias = configMapText({ ...values, condaPrefixDir: "/opt/jupyter/miniforge3" })
      .replace(/\n  jupyterDataDir: "[^"]*"/, "")
      .replace('condaPrefixDir: "/opt/jupyter/miniforge3"', 'condaPrefixDir: &prefix "/opt/jupyter/miniforge3"\n  jupyterDataDir: *prefix');
    const ps = run("dev_dummyauth", { text: alias });
    assert.deepEqual(ps.map((p) => [p.severity, p.message, p.line]), [["error", "uses the YAML alias *prefix", lastLineOf(alias, "jupyterDataDir")]]);

    const merge = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: deploy-config", "base: &base", ...Object.entries(values).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`), "data:", "  <<: *base", ""].join("\n");
    const mps = errorsOf(run("dev_dummyauth", { text: merge }));
    assert.deepEqual(mps.map((p) => p.message), ["uses a YAML merge key (<<)", "uses the YAML alias *base"]);
    assert.equal(mps[0]!.line, merge.split("\n").indexOf("  <<: *base") + 1);
  });

  it("accepts immutable: true and the spec's leading document marker", () => {
    const text = "---\n" + configMapText(goodValuesFor(getEnvironment("dev_dummyauth"))) + "immutable: true\n";
    assert.deepEqual(run("dev_dummyauth", { text }), []);
  });

  it("reports every missing required key at once", () => {
    const ps = run("prod", { values: { baseUrl: undefined, oidcServer: undefined, jwtAudience: undefined } });
    assert.deepEqual(errorsOf(ps).map((p) => p.key).sort(), ["baseUrl", "jwtAudience", "oidcServer"]);
    assert.match(ps[0]!.expected!, /e\.g\./);
  });

  it("refuses an unknown key that is a near miss of a known one, saying which", () => {
    const ps = run("dev_dummyauth", { values: { sshHostName: "localhost", pollIntervall: "30", jwtAudiance: "x", startupPollInterval: "5" } });
    const byKey = Object.fromEntries(errorsOf(ps).map((p) => [p.key, p]));
    assert.deepEqual(Object.keys(byKey).sort(), ["jwtAudiance", "pollIntervall", "sshHostName"]);
    assert.match(byKey.sshHostName!.message, /unknown key "sshHostName"/);
    assert.match(byKey.sshHostName!.expected!, /did you mean sshHostname\?/);
    assert.match(byKey.pollIntervall!.expected!, /did you mean pollInterval\?/);
    assert.match(byKey.jwtAudiance!.expected!, /did you mean jwtAudience\?/);
  });

  it("only warns about an unknown key that is not close to any known one (upstream's devAdmins)", () => {
    const ps = run("dev_dummyauth", { values: { devAdmins: "test1-admin test2-admin", somethingElse: "x" } });
    assert.ok(!hasErrors(ps), JSON.stringify(ps));
    const unknown = warningsOf(ps).filter((p) => p.message.startsWith("unknown key"));
    assert.deepEqual(unknown.map((p) => p.key).sort(), ["devAdmins", "somethingElse"]);
  });

  it("warns about keys the environment does not use, and ignored JWT keys in dummy environments", () => {
    const ps = run("prod", { values: { devUsers: "alice.proj1", dummyAuthPassword: "x" } });
    assert.deepEqual(warningsOf(ps).map((p) => p.key).sort(), ["devUsers", "dummyAuthPassword"]);
    assert.ok(!hasErrors(ps));
    const dummy = run("dev_dummyauth", { values: { oidcServer: "https://keycloak.example/realms/x", jwtAudience: "$(bad)" } });
    assert.ok(!hasErrors(dummy));
    assert.ok(warningsOf(dummy).some((p) => p.key === "jwtAudience" && /not allowed/.test(p.message)));
  });

  it("rejects unquoted numbers and YAML 1.1 booleans with a hint to quote them", () => {
    const text = configMapText(goodValuesFor(getEnvironment("dev_dummyauth")), { pollInterval: "30", logLevel: "yes" });
    const ps = run("dev_dummyauth", { text });
    const byKey = Object.fromEntries(errorsOf(ps).map((p) => [p.key, p]));
    assert.match(byKey.pollInterval!.message, /quote/);
    assert.match(byKey.logLevel!.message, /quote/);
    assert.equal(byKey.pollInterval!.line, lastLineOf(text, "pollInterval"));
  });

  it("refuses shell injection in every string key through the whole pipeline", () => {
    const attacks = ["localhost; rm -rf /", "$(id)", "`id`", "it's", 'say "hi"', "a\nb"];
    const env = getEnvironment("prod");
    for (const key of Object.keys(goodValuesFor(env))) {
      for (const a of attacks) {
        const ps = run("prod", { values: { [key]: a } });
        assert.ok(errorsOf(ps).some((p) => p.key === key), `${key}=${JSON.stringify(a)}`);
      }
    }
  });

  it("insists on localhost for in-pod Slurm and warns about paths the Slurm container does not use", () => {
    const ps = run("dev_dummyauth", { values: { sshHostname: "slurm.example.org", condaPrefixDir: "/opt/conda" } });
    assert.deepEqual(errorsOf(ps).map((p) => p.key), ["sshHostname"]);
    assert.deepEqual(warningsOf(ps).map((p) => p.key), ["condaPrefixDir"]);
  });

  it("warns when external Slurm would have to reach a loopback hub address", () => {
    const ps = run("prod", { values: { hubConnectUrl: "http://127.0.0.1:8081" } });
    assert.deepEqual(warningsOf(ps).map((p) => p.key), ["hubConnectUrl"]);
  });

  it("checks where the Hub API will be published: hubConnectUrl's host must resolve to an address of this host", () => {
    const url = "http://hub.example:8081";
    const messages = (addresses: string[], local: string[] = ["127.0.0.1", "10.1.1.1"]) =>
      hubApiAddressProblems("/deploy/deploy-configmap.yaml", url, { addresses, local }).map((p) => `${p.severity} ${p.key}: ${p.message} (expected: ${p.expected})`);
    const [unresolved] = messages([]);
    assert.match(unresolved!, /^warning hubConnectUrl: names hub\.example, which does not resolve to an address here; .* so `manifest` will refuse it/);
    assert.match(unresolved!, /expected: the IP address of this host as the compute nodes see it, e\.g\. http:\/\/10\.0\.0\.5:8081 \(or add hub\.example to \/etc\/hosts\)/);
    assert.match(messages(["127.0.1.1"])[0]!, /hub\.example \(127\.0\.1\.1\) is a loopback address/);
    assert.match(messages(["10.9.9.9"])[0]!, /hub\.example \(10\.9\.9\.9\) is not an address of this host/);
    assert.deepEqual(messages(["10.1.1.1"]), []);
    // An IP address is checked against this host's addresses too (a loopback one is the ConfigMap check's).
    const ip = (u: string) => hubApiAddressProblems("/d/c.yaml", u, { addresses: [], local: ["10.1.1.1"] }).map((p) => p.message);
    assert.match(ip("http://10.9.9.9:8081")[0] ?? "", /10\.9\.9\.9 is not an address of this host/);
    assert.deepEqual(ip("http://10.1.1.1:8081"), []);
    assert.deepEqual(ip("http://127.0.0.1:8081"), []);
  });

  it("warns that logLevel DEBUG writes tokens and JWTs to the hub's log", () => {
    for (const env of ["dev_dummyauth", "prod"]) {
      const ps = run(env, { values: { logLevel: "DEBUG" } });
      assert.deepEqual(ps.map((p) => [p.severity, p.key]), [["warning", "logLevel"]], env);
      assert.match(ps[0]!.message, /token/);
      assert.match(ps[0]!.message, /JWT/);
      assert.match(ps[0]!.expected!, /INFO/);
    }
    assert.deepEqual(run("prod", { values: { logLevel: "INFO" } }), []);
  });

  it("warns about a short dummyAuthPassword", () => {
    const ps = run("dev_dummyauth", { values: { dummyAuthPassword: "secret" } });
    assert.deepEqual(ps.map((p) => [p.severity, p.key]), [["warning", "dummyAuthPassword"]]);
  });

  it("names each missing user-provided file with the command that makes it", () => {
    const ps = run("prod", { files: { ssh_client_key: undefined, ssh_known_hosts: undefined, "zenith_client_config.yaml": undefined } });
    const files = errorsOf(ps).map((p) => p.file);
    assert.deepEqual(files, ["/deploy/ssh_client_key", "/deploy/ssh_known_hosts", "/deploy/zenith_client_config.yaml"]);
    assert.match(errorsOf(ps)[0]!.expected!, /ssh-keygen -t ed25519 -f "ssh_client_key" -N ""/);
  });

  it("does not ask for generated keys, but reports half a generated pair", () => {
    assert.deepEqual(run("dev_dummyauth", { files: {} }), []);
    const ps = run("dev_dummyauth", { files: { ssh_host_key: KEY_A.private } });
    assert.deepEqual(errorsOf(ps).map((p) => p.file), ["/deploy/ssh_host_key.pub"]);
  });

  it("detects mismatched key pairs from the OpenSSH key itself", () => {
    const ps = run("prod", { files: { "ssh_client_key.pub": KEY_B.public } });
    assert.equal(errorsOf(ps).length, 1);
    assert.match(errorsOf(ps)[0]!.message, /does not match ssh_client_key\.pub/);
  });

  it("uses ssh-keygen's derived public key for PEM keys", () => {
    const files = { ssh_client_key: KEY_RSA_PEM.private, "ssh_client_key.pub": KEY_A.public };
    assert.deepEqual(run("prod", { files }), []); // nothing to compare with
    const ps = run("prod", { files, derived: { ssh_client_key: KEY_RSA_PEM.public.split(" ").slice(0, 2).join(" ") + "\n" } });
    assert.match(errorsOf(ps)[0]!.message, /does not match/);
    assert.deepEqual(run("prod", { files: { ...files, "ssh_client_key.pub": KEY_RSA_PEM.public }, derived: { ssh_client_key: KEY_RSA_PEM.public } }), []);
  });

  it("rejects keys that are not keys, and passphrase-protected keys", () => {
    assert.match(errorsOf(run("prod", { files: { ssh_client_key: KEY_A.public } }))[0]!.message, /public key, not a private key/);
    assert.match(errorsOf(run("prod", { files: { ssh_client_key: "hello" } }))[0]!.message, /not an SSH private key/);
    assert.match(errorsOf(run("prod", { files: { "ssh_client_key.pub": "ssh-ed25519 AAAA" } }))[0]!.message, /not an SSH public key/);
    const enc = errorsOf(run("prod", { files: { ssh_client_key: KEY_ENCRYPTED.private, "ssh_client_key.pub": KEY_ENCRYPTED.public } }));
    assert.equal(enc.length, 1);
    assert.match(enc[0]!.message, /passphrase/);
  });

  it("requires a known_hosts entry for sshHostname", () => {
    const ps = run("prod", { files: { ssh_known_hosts: `other.example.org ${KEY_C.public}\n` } });
    assert.equal(errorsOf(ps).length, 1);
    assert.equal(errorsOf(ps)[0]!.file, "/deploy/ssh_known_hosts");
    assert.match(errorsOf(ps)[0]!.message, /no entry for sshHostname "slurm.example.org"/);
  });

  it("understands comma-separated, wildcard, negated, bracketed and hashed patterns", () => {
    const ok = (line: string) => assert.deepEqual(run("prod", { files: { ssh_known_hosts: `# comment\n\n${line} ${KEY_C.public}\n` } }), [], line);
    const no = (line: string) => assert.ok(hasErrors(run("prod", { files: { ssh_known_hosts: `${line} ${KEY_C.public}\n` } })), line);
    ok("other,slurm.example.org,10.1.2.3");
    ok("*.example.org");
    ok("SLURM.example.org");
    ok("slurm.example.or?");
    ok(hashHostName("slurm.example.org", Buffer.from("0123456789abcdefghij")));
    ok("@cert-authority *.example.org");
    no("*.example.org,!slurm.example.org");
    no("@revoked slurm.example.org");
    no(hashHostName("other.example.org", Buffer.from("0123456789abcdefghij")));
    const bracketed = errorsOf(run("prod", { files: { ssh_known_hosts: `[slurm.example.org]:2222 ${KEY_C.public}\n` } }));
    assert.match(bracketed[0]!.message, /port 22/);
  });

  it("matches ssh's wildcards as ssh does", () => {
    const cases: Array<[string, string, boolean]> = [
      ["*", "", true],
      ["*", "host", true],
      ["", "", true],
      ["", "a", false],
      ["?", "", false],
      ["h?st", "host", true],
      ["h?st", "hst", false],
      ["*.example.org", "slurm.example.org", true],
      ["*.example.org", "example.org", false],
      ["s*m*.org", "slurm.example.org", true],
      ["s*m*.org", "slurm.example.com", false],
      ["**a**", "bab", true],
      ["*ab*ab", "abab", true],
      ["*ab*ab", "abbab", true],
      ["*ab*ab", "aab", false],
      ["a*b*c", "abc", true],
      ["a*b*c", "acb", false],
      ["*aab", "aaab", true],
      ["10.1.2.?", "10.1.2.3", true],
      ["10.1.2.?", "10.1.2.33", false],
    ];
    for (const [pattern, name, expected] of cases) assert.equal(wildcardMatch(pattern, name), expected, `${pattern} ~ ${name}`);
  });

  it("matches known_hosts patterns in time linear in the pattern, whatever the pattern", () => {
    // `*a*a…*a*b` against a run of a's: a regular expression made from the pattern tries every way
    // of splitting the name between the stars (about C(60,30) = 1e17 ways) before it says no.
    const pattern = `${"*a".repeat(30)}*b`;
    const name = "a".repeat(60);
    const steps = { count: 0 };
    assert.equal(wildcardMatch(pattern, name, steps), false);
    assert.ok(steps.count <= name.length * name.length + pattern.length, `${steps.count} comparisons`);
    const found = { count: 0 };
    assert.equal(wildcardMatch(`${"*a".repeat(30)}*`, name, found), true);
    assert.ok(found.count <= name.length * name.length + pattern.length, `${found.count} comparisons`);
    // A pattern far longer than the name is answered from its length alone.
    const long = { count: 0 };
    assert.equal(wildcardMatch(`${"a*".repeat(100_000)}`, name, long), false);
    assert.ok(long.count <= name.length, `${long.count} comparisons`);
    // Through the known_hosts check as a user meets it.
    assert.equal(patternsMatch(`${pattern},other`, name), false);
  });

  it("matches an IPv6 sshHostname", () => {
    assert.equal(patternsMatch("::1,localhost", "::1"), true);
    assert.deepEqual(run("prod", { values: { sshHostname: "fd00::5" }, files: { ssh_known_hosts: `fd00::5 ${KEY_C.public}\n` } }), []);
  });

  it("reports malformed known_hosts lines with their numbers", () => {
    const parsed = parseKnownHosts(`host ssh-ed25519\n@bogus host ${KEY_C.public.trim()}\nhost ssh-foo AAAA\n`);
    assert.deepEqual(parsed.problems.map((p) => p.line), [1, 2, 3]);
    const ps = errorsOf(run("prod", { files: { ssh_known_hosts: `slurm.example.org ${KEY_C.public.trim()}\nbroken\n` } }));
    assert.deepEqual(ps.map((p) => p.line), [2]);
  });

  it("checks the Zenith client configuration", () => {
    const zen = (text: string) => run("dev_realauth_zenithclient", { files: { "zenith_client_config.yaml": text } });
    assert.deepEqual(zen(ZENITH_CONFIG), []);
    assert.deepEqual(zen("serverAddress: zenith.example.org\n"), []);
    assert.match(errorsOf(zen("debug: true\n"))[0]!.message, /serverAddress \(or server_address\) is missing/);
    assert.ok(hasErrors(zen("serverAddress: [a]\n")));
    assert.ok(hasErrors(zen("serverAddress: 'bad host; id'\n")));
    assert.ok(hasErrors(zen("serverAddress: a\ndebug: maybe\n")));
    assert.ok(hasErrors(zen("- a\n")));
    assert.ok(hasErrors(zen("serverAddress: a\n  b: : c\n")));
    const owned = zen("serverAddress: a\nforwardToPort: 8000\n");
    assert.deepEqual(owned.map((p) => [p.severity, p.key, p.line, p.file]), [["error", "forwardToPort", 2, "/deploy/zenith_client_config.yaml"]]);
    assert.match(owned[0]!.message, /set by the manifest/);
    assert.deepEqual(zen("server_address: zenith.example.org\nserver_port: 2222\n"), []);
    assert.deepEqual(warningsOf(zen("serverAddress: a\nauthOidcIssuer: https://x.example/\n")).length, 1);
  });

  it("formats problems for people", () => {
    const p: Problem = { severity: "error", file: "/d/f.yaml", line: 3, key: "k", message: "is bad", expected: "good" };
    assert.equal(formatProblem(p), "error: /d/f.yaml:3: k: is bad (expected: good)");
  });

  it("hands on the values that the environment uses and that passed their checks", () => {
    const env = getEnvironment("dev_dummyauth");
    const values: Record<string, string> = { ...goodValuesFor(env), oidcServer: "https://issuer.example.org/", logLevel: "loud" };
    const { config } = validateDeployDir(env, { dir: DIR, configMapText: configMapText(values), files: goodFilesFor(env) });
    assert.equal(config.baseUrl, values["baseUrl"]);
    assert.equal(config.devUsers, values["devUsers"]);
    assert.equal(config.logLevel, undefined, "an invalid value is not handed on");
    assert.equal(config.oidcServer, undefined, "a key the environment ignores is not handed on");
    assert.deepEqual(validateDeployDir(env, { dir: DIR, configMapText: "a: [\n", files: {} }).config, {});
  });
});
