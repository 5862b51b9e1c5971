/**
 * The Zenith client's `connect` configuration as the public client reads it (azimuth-cloud/zenith,
 * `client/zenith/client/config.py`, loaded through configomatic), and what the pod decides of it.
 *
 * How the client reads it, and so what `check` must know:
 * - the file named by ZENITH_CLIENT_CONFIG is YAML (PyYAML, YAML 1.1); every field may be written
 *   in snake_case (`server_address`) or camelCase (`serverAddress`); unknown keys are ignored;
 * - `ZENITH_CLIENT__<FIELD>` environment variables are merged over the file under the snake_case
 *   name, so a snake_case key in the file loses to them, but a camelCase key wins (pydantic
 *   prefers the alias when both spellings reach it). A camelCase copy of a setting the manifest
 *   owns would therefore silently override the manifest and point the tunnel elsewhere.
 */
import { isMap, isScalar, LineCounter, parseAllDocuments, type Node } from "yaml";
import { checkValue, ipVersion, isDnsHostName } from "./deployConfig.js";
import { closestName } from "./similar.js";

export const ZENITH_CLIENT_CONFIG_PATH = "/etc/zenith/client.yaml";
export const ZENITH_CLIENT_KEY_PATH = "/etc/zenith/ssh_key";
/**
 * The client's arguments. The manifest gives them as the container's `args`, which replace the
 * image's CMD but keep its ENTRYPOINT (tini in the public image, which forwards signals to the
 * client and its ssh); older images' CMD only prints the help.
 */
export const ZENITH_CLIENT_ARGS: readonly string[] = ["zenith-client", "connect"];

const ENV_PREFIX = "ZENITH_CLIENT__";

/** Fields the manifest sets through ZENITH_CLIENT__* variables, in the order they are set. */
const MANIFEST_FIELDS = ["ssh_identity_path", "forward_to_host", "forward_to_port"] as const;
type ManifestField = (typeof MANIFEST_FIELDS)[number];

const envVarOf = (field: string) => `${ENV_PREFIX}${field.toUpperCase()}`;

/** The zenith-client container's environment: where the config is, and the settings the manifest owns. */
export function zenithClientEnv(proxyPort: number): Array<{ name: string; value: string }> {
  const values: Record<ManifestField, string> = {
    ssh_identity_path: ZENITH_CLIENT_KEY_PATH,
    forward_to_host: "127.0.0.1",
    forward_to_port: String(proxyPort),
  };
  return [{ name: "ZENITH_CLIENT_CONFIG", value: ZENITH_CLIENT_CONFIG_PATH }, ...MANIFEST_FIELDS.map((f) => ({ name: envVarOf(f), value: values[f] }))];
}

// ---------------------------------------------------------------------------------------------
// The fields of the client's ConnectConfig

type Kind =
  | "string"
  | "host"
  | "port"
  | "positiveInt"
  | "bool"
  | "url"
  | "protocol"
  | "urlPath"
  | "groups"
  | "authParams"
  | "mapping"
  /** set by the manifest through an environment variable */
  | "manifest"
  /** would replace the key the manifest mounts */
  | "manifestKey"
  /** a path in the container, where only the manifest's mounts exist */
  | "containerFile";

const FIELDS: Readonly<Record<string, Kind>> = {
  logging: "mapping",
  debug: "bool",
  ssh_executable: "string",
  run_as_user: "positiveInt",
  ssh_identity_path: "manifest",
  ssh_private_key_data: "manifestKey",
  configure_timeout: "positiveInt",
  server_address: "host",
  server_port: "port",
  forward_to_host: "manifest",
  forward_to_port: "manifest",
  server_alive_period: "positiveInt",
  server_alive_failures: "positiveInt",
  backend_protocol: "protocol",
  liveness_path: "urlPath",
  liveness_period: "positiveInt",
  liveness_failures: "positiveInt",
  read_timeout: "positiveInt",
  internal: "bool",
  skip_auth: "bool",
  auth_oidc_issuer: "url",
  auth_oidc_client_id: "string",
  auth_oidc_client_secret: "string",
  auth_oidc_allowed_groups: "groups",
  auth_external_params: "authParams",
  tls_cert_file: "containerFile",
  tls_cert_data: "string",
  tls_key_file: "containerFile",
  tls_key_data: "string",
  tls_client_ca_file: "containerFile",
  tls_client_ca_data: "string",
};

/** configomatic's alias generator: `auth_oidc_client_id` -> `authOidcClientId`. */
export function camelCaseOf(field: string): string {
  const [first, ...rest] = field.split("_");
  return [first ?? "", ...rest.map((p) => (p === "" ? "" : p[0]!.toUpperCase() + p.slice(1).toLowerCase()))].join("");
}

interface Spelling {
  readonly field: string;
  readonly camel: boolean;
}

const SPELLINGS: ReadonlyMap<string, Spelling> = new Map(
  Object.keys(FIELDS).flatMap((field): Array<[string, Spelling]> => {
    const camel = camelCaseOf(field);
    return camel === field ? [[field, { field, camel: false }]] : [[field, { field, camel: false }], [camel, { field, camel: true }]];
  }),
);

// ---------------------------------------------------------------------------------------------
// Checks

export interface ZenithConfigIssue {
  readonly severity: "error" | "warning";
  readonly message: string;
  readonly key?: string;
  readonly line?: number;
  readonly expected?: string;
}

const PYDANTIC_TRUE = ["1", "on", "t", "true", "y", "yes"];
const PYDANTIC_FALSE = ["0", "off", "f", "false", "n", "no"];

/** The value as pydantic's lax mode would take it for a bool field, or undefined when it refuses it. */
function asBool(v: unknown): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (v === 0 || v === 1) return v === 1;
  if (typeof v === "string") {
    const s = v.trim().toLowerCase();
    if (PYDANTIC_TRUE.includes(s)) return true;
    if (PYDANTIC_FALSE.includes(s)) return false;
  }
  return undefined;
}

function asInt(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "string" && /^\s*[+-]?[0-9]+\s*$/.test(v)) return Number(v);
  return undefined;
}

const AUTH_PARAM_KEY = /^[a-z][a-z0-9-]*?[a-z0-9]$/;
const GROUP = /^[a-zA-Z0-9_/-]+$/;

/** Problems with one value, as messages; the field's own rules, then what the pod needs of it. */
function valueProblems(field: string, kind: Kind, value: unknown): Array<Omit<ZenithConfigIssue, "key" | "line">> {
  const err = (message: string, expected?: string) => [{ severity: "error" as const, message, ...(expected ? { expected } : {}) }];
  const warn = (message: string, expected?: string) => [{ severity: "warning" as const, message, ...(expected ? { expected } : {}) }];
  const nonEmptyString = typeof value === "string" && value.trim() !== "";
  switch (kind) {
    case "manifest":
    case "manifestKey":
    case "containerFile":
      return []; // ownedProblem() reports these
    case "mapping":
      return value !== null && typeof value === "object" && !Array.isArray(value) ? [] : err("must be a mapping");
    case "string":
      return nonEmptyString ? [] : err("must be a non-empty string");
    case "host":
      if (!nonEmptyString) return err("must be a non-empty string", "the Zenith server's SSHD host, e.g. zenith-sshd.example.org");
      return ipVersion(value as string) !== 0 || isDnsHostName(value as string)
        ? []
        : err(`${JSON.stringify(value)} is not a host name or IP address`, "the Zenith server's SSHD host, e.g. zenith-sshd.example.org");
    case "port": {
      const n = asInt(value);
      return n !== undefined && n >= 1 && n <= 65535 ? [] : err("must be a port number (1-65535)", "the Zenith server's SSHD port, e.g. 22");
    }
    case "positiveInt": {
      const n = asInt(value);
      return n !== undefined && n > 0 ? [] : err("must be a positive whole number");
    }
    case "bool": {
      const b = asBool(value);
      if (b === undefined) return err("must be true or false");
      if (b && field === "skip_auth") {
        return warn(
          "is true: Zenith then authenticates no one and adds no X-Auth-Id-Token header, so BricsAuthenticator refuses every login",
          "leave skip_auth unset (false)",
        );
      }
      if (b && field === "internal") {
        return warn("is true: Zenith then gives the service no ingress, so browsers cannot reach JupyterHub", "leave internal unset (false)");
      }
      return [];
    }
    case "url":
      if (typeof value !== "string") return err("must be a URL");
      return checkValue("oidcServer", value).map((i) => ({ ...i, expected: "the OIDC issuer URL, e.g. https://keycloak.example.org/realms/brics" }));
    case "protocol":
      if (value !== "http" && value !== "https" && value !== "ssh") return err("must be one of http, https, ssh");
      return value === "http" ? [] : err(`is ${value}, but the tunnel ends at JupyterHub's proxy in the pod, which speaks plain HTTP`, "http (the default)");
    case "urlPath":
      return typeof value === "string" && value.startsWith("/") ? [] : err("must be a URL path starting with /", "e.g. /hub/health");
    case "groups": {
      const list = typeof value === "string" ? value.split(",") : value;
      if (!Array.isArray(list) || !list.every((g) => typeof g === "string" && GROUP.test(g))) {
        return err("must be a list of group names (letters, digits, _ / -), or one comma-separated string");
      }
      return [];
    }
    case "authParams": {
      if (value === null || typeof value !== "object" || Array.isArray(value)) return err("must be a mapping of parameter names to strings");
      const bad = Object.entries(value as Record<string, unknown>).filter(
        ([k, v]) => !AUTH_PARAM_KEY.test(k.replace(/_/g, "-")) || k.length > 50 || typeof v !== "string" || v.length > 1024,
      );
      return bad.length === 0
        ? []
        : err(`has invalid entries: ${bad.map(([k]) => JSON.stringify(k)).join(", ")}`, "lower-case names of letters, digits and -, to strings of at most 1024 characters");
    }
  }
}

/** Why the file may not set a field the pod decides; undefined for the others. */
function ownedProblem(field: string, kind: Kind, spelled: string, camel: boolean): Omit<ZenithConfigIssue, "key" | "line"> | undefined {
  if (kind === "manifest") {
    const envVar = envVarOf(field);
    const why = field === "ssh_identity_path" ? "the client's key is ssh_zenith_client_key, mounted there" : "the tunnel must end at JupyterHub's proxy in the pod";
    return {
      severity: "error",
      message: camel
        ? `is set by the manifest (${envVar}: ${why}); written in camelCase here it would override the manifest's value and send the tunnel elsewhere`
        : `is set by the manifest (${envVar}: ${why}), whose value overrides this one`,
      expected: `remove ${spelled}`,
    };
  }
  if (kind === "manifestKey") {
    return {
      severity: "error",
      message: `would replace the client's key, which the manifest mounts from ssh_zenith_client_key at ${ZENITH_CLIENT_KEY_PATH}`,
      expected: `remove ${spelled}; put the key in ssh_zenith_client_key`,
    };
  }
  if (kind === "containerFile") {
    const data = camelCaseOf(field.replace(/_file$/, "_data"));
    return {
      severity: "error",
      message: "names a file in the Zenith client container, which holds only what the manifest mounts (the configuration and the SSH key)",
      expected: `the file's content, base64-encoded, as ${data}`,
    };
  }
  return undefined;
}

const OIDC_FIELDS = ["auth_oidc_issuer", "auth_oidc_client_id", "auth_oidc_client_secret"];

/** Every problem of a zenith_client_config.yaml text, each naming its key and line where known. */
export function checkZenithClientConfig(text: string): ZenithConfigIssue[] {
  const issues: ZenithConfigIssue[] = [];
  const lc = new LineCounter();
  // PyYAML reads YAML 1.1 (so `debug: yes` is a boolean).
  const parsed = parseAllDocuments(text, { version: "1.1", lineCounter: lc, uniqueKeys: true });
  const docs = Array.isArray(parsed) ? parsed : [];
  for (const d of docs) {
    for (const e of d.errors) {
      issues.push({ severity: "error", message: `is not valid YAML: ${e.message.split("\n")[0]}`, ...(e.linePos ? { line: e.linePos[0].line } : {}) });
    }
  }
  if (issues.length > 0) return issues;
  const nonEmpty = docs.filter((d) => d.contents !== null);
  const required = { severity: "error" as const, key: "serverAddress", message: "required key serverAddress (or server_address) is missing", expected: "serverAddress: <Zenith SSHD host>" };
  // An empty file is an empty configuration to the client.
  if (nonEmpty.length === 0) return [required];
  if (nonEmpty.length !== 1 || !isMap(nonEmpty[0]!.contents)) {
    return [{ severity: "error", message: "is not a single YAML mapping", expected: "serverAddress: <Zenith SSHD host> and optional OIDC settings" }];
  }

  const seen = new Map<string, string[]>(); // field -> spellings used
  for (const pair of nonEmpty[0]!.contents.items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const keyNode = pair.key as Node | null;
    const at = { key: name, ...(keyNode?.range ? { line: lc.linePos(keyNode.range[0]).line } : {}) };
    const spelling = SPELLINGS.get(name);
    if (spelling === undefined) {
      const suggestion = closestName(name, [...SPELLINGS.keys()]);
      issues.push({
        severity: "warning",
        ...at,
        message: `unknown key ${JSON.stringify(name)} is ignored by the Zenith client`,
        ...(suggestion !== undefined ? { expected: `did you mean ${suggestion}?` } : {}),
      });
      continue;
    }
    const { field, camel } = spelling;
    seen.set(field, [...(seen.get(field) ?? []), name]);
    const value = isScalar(pair.value) ? pair.value.value : pair.value === null ? null : (pair.value as Node).toJSON();
    const kind = FIELDS[field]!;
    const owned = ownedProblem(field, kind, name, camel);
    if (owned !== undefined) {
      issues.push({ ...owned, ...at });
      continue;
    }
    for (const p of valueProblems(field, kind, value)) issues.push({ ...p, ...at });
  }

  for (const [field, names] of seen) {
    if (names.length > 1) {
      issues.push({
        severity: "warning",
        key: names.join(", "),
        message: `${field} is set twice, as ${names.join(" and ")}; the client uses ${camelCaseOf(field)}`,
        expected: "one of them",
      });
    }
  }
  if (!seen.has("server_address")) issues.push(required);
  const oidcGiven = OIDC_FIELDS.filter((f) => seen.has(f));
  if (oidcGiven.length > 0 && oidcGiven.length < OIDC_FIELDS.length) {
    issues.push({
      severity: "warning",
      message: `sets ${oidcGiven.map(camelCaseOf).join(", ")} but not ${OIDC_FIELDS.filter((f) => !seen.has(f)).map(camelCaseOf).join(", ")}`,
      expected: "all three OIDC settings, or none",
    });
  }
  if (seen.has("tls_cert_data") && !seen.has("tls_key_data")) {
    issues.push({ severity: "error", key: "tlsKeyData", message: "is required when tlsCertData is set (the client refuses a certificate without its key)" });
  }
  return issues;
}
