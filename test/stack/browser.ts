import { request } from "node:http";

/**
 * Just enough of a browser for JupyterHub: a cookie jar, redirects followed by hand (so cookies
 * set on the way are kept, as the OAuth hand-off between hub and user server needs), forms
 * posted with the `_xsrf` value the page carries.
 */

export interface Page {
  readonly status: number;
  readonly url: string;
  readonly body: string;
  readonly headers: Headers;
}

/**
 * node:http rather than fetch: fetch sends `Sec-Fetch-Mode: cors`, and JupyterHub (>= 4.1) sets no
 * `_xsrf` cookie for requests that do not look like a browser's navigation.
 */
function httpRequest(
  method: string,
  url: URL,
  headers: Record<string, string>,
  body: string | undefined,
): Promise<{ status: number; headers: Headers; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          for (const one of Array.isArray(v) ? v : v === undefined ? [] : [v]) h.append(k, one);
        }
        resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks).toString("utf8") });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

interface Cookie {
  readonly name: string;
  readonly value: string;
  readonly path: string;
}

export class Browser {
  private readonly cookies = new Map<string, Cookie>();

  constructor(readonly origin: string) {}

  /** The cookie `name`; with `path`, the one a request to that path gets (the longest matching cookie path). */
  cookie(name: string, path?: string): string | undefined {
    const named = [...this.cookies.values()].filter((c) => c.name === name);
    if (path === undefined) return named[0]?.value;
    return named.filter((c) => path.startsWith(c.path)).sort((a, b) => b.path.length - a.path.length)[0]?.value;
  }

  /** A second browser holding this one's cookies: the same session, seen later. */
  clone(): Browser {
    const b = new Browser(this.origin);
    for (const [k, v] of this.cookies) b.cookies.set(k, v);
    return b;
  }

  private cookieHeader(path: string): string {
    return [...this.cookies.values()]
      .filter((c) => path.startsWith(c.path))
      // Longer paths first, as browsers send them, so a user-server cookie wins over the hub's.
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join("; ");
  }

  private remember(res: { headers: Headers }, requestPath: string): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      if (pair === undefined) continue;
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = requestPath.replace(/[^/]*$/, "") || "/";
      let expired = false;
      for (const a of attrs) {
        const [k, v = ""] = a.split("=");
        const key = k?.trim().toLowerCase();
        if (key === "path") path = v.trim();
        if (key === "max-age" && Number(v) <= 0) expired = true;
        if (key === "expires" && Date.parse(v) < Date.now()) expired = true;
      }
      const id = `${name} ${path}`;
      if (expired) this.cookies.delete(id);
      else this.cookies.set(id, { name, value, path });
    }
  }

  /** One request, no redirect following. */
  async raw(method: string, url: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<Page> {
    const target = new URL(url, this.origin);
    const headers: Record<string, string> = { "Sec-Fetch-Mode": "navigate", ...init.headers };
    const cookie = this.cookieHeader(target.pathname);
    if (cookie !== "") headers["Cookie"] = cookie;
    const res = await httpRequest(method, target, headers, init.body);
    this.remember(res, target.pathname);
    return { status: res.status, url: target.toString(), body: res.body, headers: res.headers };
  }

  /** A request whose redirects are followed (GET after the first hop), as a browser does. */
  async go(
    method: string,
    url: string,
    init: { body?: string; headers?: Record<string, string> } = {},
    maxHops = 15,
  ): Promise<Page> {
    let page = await this.raw(method, url, init);
    for (let hop = 0; hop < maxHops && page.status >= 300 && page.status < 400; hop++) {
      const location = page.headers.get("location");
      if (location === null) break;
      page = await this.raw("GET", new URL(location, page.url).toString());
    }
    return page;
  }

  get(url: string): Promise<Page> {
    return this.go("GET", url);
  }

  /**
   * POST a urlencoded form. Only the given fields are sent, as a browser sends only the form's
   * inputs: JupyterHub's login form carries `_xsrf` as a hidden input (pass it, see hiddenXsrf),
   * its spawn form in the action URL, and the spawner refuses fields it does not know.
   */
  postForm(url: string, fields: Record<string, string>, follow = true): Promise<Page> {
    const init = {
      body: new URLSearchParams(fields).toString(),
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    };
    return follow ? this.go("POST", url, init) : this.raw("POST", url, init);
  }

  /** A hub API call authenticated by the login cookies, with the xsrf header the hub's pages send. */
  api(method: string, url: string, body?: unknown): Promise<Page> {
    const headers: Record<string, string> = { Accept: "application/json" };
    const xsrf = this.cookie("_xsrf");
    if (xsrf !== undefined) headers["X-XSRFToken"] = xsrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return this.raw(method, url, { headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  }
}

/** The `action` of the first form in an HTML page, resolved against the page's URL. */
export function formAction(page: Page): string {
  const m = /<form\b[^>]*\baction="([^"]*)"/i.exec(page.body);
  const action = (m?.[1] ?? "").replaceAll("&amp;", "&");
  return new URL(action, page.url).toString();
}

/** The value of a hidden `_xsrf` input, when the page has one. */
export function hiddenXsrf(page: Page): string | undefined {
  const m = /name="_xsrf"\s+value="([^"]*)"/i.exec(page.body) ?? /value="([^"]*)"\s+name="_xsrf"/i.exec(page.body);
  return m?.[1];
}

/** The text of an HTML page as a browser shows it (tags dropped, the entities JupyterHub's templates write decoded). */
export function visibleText(html: string): string {
  return html
    .replace(/<[^>]*>/g, " ")
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ");
}
