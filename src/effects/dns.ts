/**
 * Name lookups, as the system resolves names (getaddrinfo: /etc/hosts, then DNS), and the
 * addresses of this host's interfaces. Used for hubConnectUrl, whose address is where the Hub
 * API is published.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";

/** The addresses `host` resolves to here; none when it does not resolve (or is not a name). */
export async function addressesOf(host: string): Promise<string[]> {
  if (isIP(host) !== 0) return [host];
  try {
    return (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  } catch {
    return [];
  }
}

/** The host of an http(s) URL, without IPv6 brackets; undefined when it is not a URL. */
export function urlHost(url: string): string | undefined {
  try {
    return new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
  } catch {
    return undefined;
  }
}

export function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}
