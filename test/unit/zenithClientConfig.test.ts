import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { camelCaseOf, checkZenithClientConfig, zenithClientEnv, type ZenithConfigIssue } from "../../src/plan/zenithClientConfig.js";

const check = (text: string) => checkZenithClientConfig(text);
const errors = (text: string) => check(text).filter((i) => i.severity === "error");
const warnings = (text: string) => check(text).filter((i) => i.severity === "warning");
const keysOf = (issues: ZenithConfigIssue[]) => issues.map((i) => i.key);

/** Every field of the client's connect configuration that a deploy directory may set, with a valid value. */
const SETTABLE: Record<string, string> = {
  server_address: "zenith-sshd.example.org",
  server_port: "2222",
  debug: "true",
  ssh_executable: "ssh",
  run_as_user: "1001",
  configure_timeout: "20",
  server_alive_period: "5",
  server_alive_failures: "2",
  backend_protocol: "http",
  liveness_path: "/jupyter/hub/health",
  liveness_period: "10",
  liveness_failures: "3",
  read_timeout: "300",
  internal: "false",
  skip_auth: "false",
  auth_oidc_issuer: "https://keycloak.example.org/realms/brics",
  auth_oidc_client_id: "jupyter",
  auth_oidc_client_secret: "not-a-secret",
  auth_oidc_allowed_groups: "[admins, /org/devs]",
  auth_external_params: "{tenancy-id: abc}",
  tls_cert_data: "Y2VydA==",
  tls_key_data: "a2V5",
  tls_client_ca_data: "Y2E=",
  logging: "{loggers: {'': {level: DEBUG}}}",
};

const yamlOf = (entries: Record<string, string>) => Object.entries(entries).map(([k, v]) => `${k}: ${v}\n`).join("");

describe("Zenith client configuration", () => {
  it("spells fields as configomatic's alias generator does", () => {
    assert.equal(camelCaseOf("server_address"), "serverAddress");
    assert.equal(camelCaseOf("auth_oidc_client_id"), "authOidcClientId");
    assert.equal(camelCaseOf("tls_client_ca_data"), "tlsClientCaData");
    assert.equal(camelCaseOf("debug"), "debug");
  });

  it("accepts every field of the connect configuration, in snake_case and in camelCase", () => {
    assert.deepEqual(check(yamlOf(SETTABLE)), []);
    const camel = Object.fromEntries(Object.entries(SETTABLE).map(([k, v]) => [camelCaseOf(k), v]));
    assert.deepEqual(check(yamlOf(camel)), []);
  });

  it("accepts the forms pydantic accepts for numbers and booleans, and YAML 1.1 booleans", () => {
    assert.deepEqual(check("serverAddress: a.example\nserverPort: '22'\ndebug: yes\nskipAuth: 'off'\n"), []);
  });

  it("requires the server address in either spelling; an empty file lacks it", () => {
    for (const text of ["", "debug: true\n"]) {
      const [e] = errors(text);
      assert.equal(e?.key, "serverAddress");
      assert.match(e!.message, /serverAddress \(or server_address\) is missing/);
    }
  });

  for (const [field, camel, envVar] of [
    ["forward_to_host", "forwardToHost", "ZENITH_CLIENT__FORWARD_TO_HOST"],
    ["forward_to_port", "forwardToPort", "ZENITH_CLIENT__FORWARD_TO_PORT"],
    ["ssh_identity_path", "sshIdentityPath", "ZENITH_CLIENT__SSH_IDENTITY_PATH"],
  ] as const) {
    it(`refuses ${camel} and ${field}: the manifest sets ${envVar}`, () => {
      const [c] = errors(`serverAddress: a.example\n${camel}: x\n`);
      assert.equal(c?.key, camel);
      assert.equal(c?.line, 2);
      assert.match(c!.message, new RegExp(`set by the manifest \\(${envVar}`));
      assert.match(c!.message, /would override the manifest's value/);
      const [s] = errors(`serverAddress: a.example\n${field}: x\n`);
      assert.equal(s?.key, field);
      assert.match(s!.message, /set by the manifest.*overrides this one/);
    });
  }

  it("the manifest's variables are exactly the settings check refuses", () => {
    const env = zenithClientEnv(8000);
    assert.deepEqual(env, [
      { name: "ZENITH_CLIENT_CONFIG", value: "/etc/zenith/client.yaml" },
      { name: "ZENITH_CLIENT__SSH_IDENTITY_PATH", value: "/etc/zenith/ssh_key" },
      { name: "ZENITH_CLIENT__FORWARD_TO_HOST", value: "127.0.0.1" },
      { name: "ZENITH_CLIENT__FORWARD_TO_PORT", value: "8000" },
    ]);
    for (const { name } of env.slice(1)) {
      const field = name.replace(/^ZENITH_CLIENT__/, "").toLowerCase();
      assert.equal(errors(`serverAddress: a.example\n${camelCaseOf(field)}: x\n`).length, 1, field);
    }
  });

  it("refuses a key in the file instead of the mounted one, and file paths the container does not hold", () => {
    assert.match(errors("serverAddress: a.example\nsshPrivateKeyData: AAAA\n")[0]!.message, /ssh_zenith_client_key/);
    const [tls] = errors("serverAddress: a.example\ntlsCertFile: /etc/cert.pem\ntlsKeyData: a2V5\n");
    assert.equal(tls?.key, "tlsCertFile");
    assert.match(tls!.expected!, /tlsCertData/);
    assert.deepEqual(keysOf(errors("serverAddress: a.example\ntls_cert_data: Y2VydA==\n")), ["tlsKeyData"]);
  });

  it("checks values by their field's type", () => {
    const bad: Record<string, string> = {
      serverAddress: "'bad host; id'",
      serverPort: "70000",
      debug: "maybe",
      configureTimeout: "0",
      backendProtocol: "ftp",
      livenessPath: "health",
      authOidcIssuer: "not-a-url",
      authOidcClientId: "12345",
      authOidcAllowedGroups: "[a b]",
      authExternalParams: "{Tenancy: x}",
      logging: "loud",
    };
    assert.deepEqual(keysOf(errors(yamlOf(bad))).sort(), Object.keys(bad).sort());
  });

  it("refuses what would break the pod's tunnel, warns about what would lock users out", () => {
    assert.match(errors("serverAddress: a.example\nbackendProtocol: https\n")[0]!.message, /plain HTTP/);
    assert.match(warnings("serverAddress: a.example\nskipAuth: true\n")[0]!.message, /X-Auth-Id-Token/);
    assert.match(warnings("serverAddress: a.example\ninternal: true\n")[0]!.message, /no ingress/);
  });

  it("warns about unknown keys (the client ignores them), with a suggestion", () => {
    const [w] = warnings("serverAddress: a.example\nserverPot: 22\nsubdomain: x\n");
    assert.equal(w?.key, "serverPot");
    assert.equal(w?.expected, "did you mean serverPort?");
    assert.deepEqual(keysOf(warnings("serverAddress: a.example\nsubdomain: x\n")), ["subdomain"]);
  });

  it("warns when one field is set in both spellings, naming the one the client uses", () => {
    const [w] = warnings("serverAddress: a.example\nserver_address: b.example\n");
    assert.match(w!.message, /the client uses serverAddress/);
  });

  it("warns when only part of the OIDC settings is given", () => {
    assert.match(warnings("server_address: a.example\nauth_oidc_issuer: https://x.example/\n")[0]!.message, /not authOidcClientId, authOidcClientSecret/);
  });

  it("reports YAML errors and non-mappings", () => {
    assert.match(errors("serverAddress: a\n  b: : c\n")[0]!.message, /not valid YAML/);
    assert.match(errors("- a\n")[0]!.message, /single YAML mapping/);
  });
});
