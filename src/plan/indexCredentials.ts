/**
 * A package index URL with a user name and password in it (`https://user:token@mirror/simple`).
 * A build argument is on podman's command line and stays in the image's history and configuration,
 * so only the URL without them becomes PIP_INDEX_URL; the user name and password reach pip as a
 * netrc file in a build secret, which only the pip steps mount (docs/images.md).
 */

/** Id of the build secret holding the index's netrc; the Containerfiles mount it under this id. */
export const PIP_NETRC_SECRET = "pip_netrc";

export interface IndexCredentials {
  /** The host the credentials are for (netrc's `machine`: a host name, no port). */
  readonly host: string;
  readonly login: string;
  /** Empty when the URL held a user name alone (a token used as the user name). */
  readonly password: string;
}

export class IndexUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IndexUrlError";
  }
}

/**
 * A file a build step reads at /run/secrets/<id>. The content is a private field: it is in no
 * JSON.stringify or util.inspect of a plan that holds it, so no log of a plan can show it.
 */
export class BuildSecret {
  readonly #content: string;
  constructor(
    readonly id: string,
    content: string,
  ) {
    this.#content = content;
  }
  content(): string {
    return this.#content;
  }
}

/** `scheme://userinfo@`: the authority up to its last `@` (an unencoded `@` in a password is common). */
const URL_USERINFO = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)@/;

/** The URL with its user name and password replaced by `****`, for messages. */
export function maskUrlCredentials(url: string): string {
  return url.replace(URL_USERINFO, (_, scheme: string, userinfo: string) => `${scheme}${userinfo.includes(":") ? "****:****" : "****"}@`);
}

/** What a netrc token cannot hold (Python's netrc reader splits on white space; quotes, `#` and `\` are syntax). */
const NETRC_UNSAFE = /[\s"'#\\]/;

/**
 * Splits the credentials off a package index URL: `url` is the URL without them, `credentials`
 * what it held. `source` names where the URL came from (a variable, or argfile and key); messages
 * show the URL masked.
 */
export function splitIndexCredentials(raw: string, source: string): { url: string; credentials?: IndexCredentials } {
  if (!URL_USERINFO.test(raw)) return { url: raw };
  const masked = maskUrlCredentials(raw);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new IndexUrlError(`${source}=${masked} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new IndexUrlError(`${source}=${masked}: a user name and password are only passed to http:// and https:// indexes`);
  }
  if (url.hostname.startsWith("[")) {
    // netrc names a machine by host name, and pip's reader cuts an IPv6 literal at its first ':'.
    throw new IndexUrlError(`${source}=${masked}: a user name and password need the index's host name, not an IPv6 address`);
  }
  let login: string;
  let password: string;
  try {
    login = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
  } catch {
    throw new IndexUrlError(`${source}=${masked}: the user name or password is not valid percent-encoding`);
  }
  if (login === "" || NETRC_UNSAFE.test(login) || NETRC_UNSAFE.test(password)) {
    throw new IndexUrlError(
      `${source}=${masked}: the user name must be given, and neither it nor the password may hold white space, quotes, '#' or '\\' (pip gets them in a netrc file)`,
    );
  }
  url.username = "";
  url.password = "";
  return { url: url.toString(), credentials: { host: url.hostname, login, password } };
}

/** The netrc file pip reads the credentials from (NETRC points at it in the pip steps). */
export function renderNetrc(c: IndexCredentials): string {
  return `machine ${c.host} login ${c.login}${c.password === "" ? "" : ` password ${c.password}`}\n`;
}

/** The build secrets that carry `credentials` to pip: none when the URL held none. */
export function indexSecrets(credentials: IndexCredentials | undefined): BuildSecret[] {
  return credentials === undefined ? [] : [new BuildSecret(PIP_NETRC_SECRET, renderNetrc(credentials))];
}
