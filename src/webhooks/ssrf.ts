/**
 * Server-side request forgery guard for author webhook endpoints (issue 16, ADR 0106): an
 * author's endpoint may not reach loopback, private, link-local, shared, multicast, reserved or
 * unspecified addresses. Checked at registration (every address the name resolves to) and again at
 * delivery INSIDE the connection's DNS lookup, so the address checked is the address connected to
 * (a name re-pointed to 127.0.0.1 after registration, DNS rebinding, is refused too).
 *
 * Ranges from the IANA special-purpose registries (RFC 6890 and updates); built on Node's
 * `net.BlockList` (no dependency; see ADR 0106).
 */
import dns from "node:dns";
import net from "node:net";

const blocked = new net.BlockList();
for (const [a, p] of [
  ["0.0.0.0", 8], // "this network", unspecified
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // shared address space (carrier-grade NAT)
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local (cloud metadata services live here)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.88.99.0", 24], // 6to4 relay anycast (deprecated)
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) blocked.addSubnet(a, p, "ipv4");
for (const [a, p] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["64:ff9b:1::", 48], // local-use NAT64
  ["100::", 64], // discard
  ["2001:db8::", 32], // documentation
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
] as const) blocked.addSubnet(a, p, "ipv6");

/** Thrown when an author endpoint would reach a non-public address. */
export class PrivateAddressError extends Error {
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(
      `${host === address ? "address" : `${host} resolves to`} ${address}, which is loopback, private, link-local or reserved; ` +
        "author endpoints must be publicly reachable (an admin may allow it for local development)",
    );
    this.name = "PrivateAddressError";
  }
}

/** The IPv4 address inside an IPv4-mapped or -compatible IPv6 address (::ffff:a.b.c.d), else null. */
function embeddedIpv4(address: string): string | null {
  const m = /^(?:::ffff:|::)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i.exec(address);
  if (m) return m[1]!;
  const h = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (h) {
    const hi = parseInt(h[1]!, 16);
    const lo = parseInt(h[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return null;
}

/** True when `address` (an IP literal) is publicly routable. Throws on a non-IP string. */
export function isPublicAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const family = net.isIP(bare);
  if (family === 0) throw new Error(`${address} is not an IP address`);
  if (family === 4) return !blocked.check(bare, "ipv4");
  const v4 = embeddedIpv4(bare);
  if (v4 !== null) return !blocked.check(v4, "ipv4");
  return !blocked.check(bare, "ipv6");
}

/** Throws PrivateAddressError unless every address is public. */
export function assertPublicAddresses(host: string, addresses: readonly string[]): void {
  if (addresses.length === 0) throw new Error(`${host} resolves to no address`);
  for (const a of addresses) if (!isPublicAddress(a)) throw new PrivateAddressError(host, a);
}

/** The URL's host without IPv6 brackets. */
export function urlHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, "");
}

/**
 * Resolve the URL's host (an IP literal as is) and require every address to be public.
 * Throws PrivateAddressError, or an Error naming the host when it does not resolve.
 */
export async function assertPublicUrl(url: URL): Promise<void> {
  const host = urlHost(url);
  if (net.isIP(host) !== 0) return assertPublicAddresses(host, [host]);
  let addrs: dns.LookupAddress[];
  try {
    addrs = await dns.promises.lookup(host, { all: true, verbatim: true });
  } catch (err) {
    throw new Error(`${host} does not resolve: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  assertPublicAddresses(host, addrs.map((a) => a.address));
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http(s).request that refuses non-public answers: the connection is made only to
 * an address that passed the check (no window between check and connect).
 */
export function publicOnlyLookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback): void {
  dns.lookup(hostname, { ...options, all: true, verbatim: true }, (err, addresses) => {
    if (err) return callback(err, []);
    try {
      assertPublicAddresses(hostname, addresses.map((a) => a.address));
    } catch (e) {
      return callback(Object.assign(e as Error, { code: "EPRIVATEADDRESS" }) as NodeJS.ErrnoException, []);
    }
    if (options.all === true) return callback(null, addresses);
    const first = addresses[0]!;
    callback(null, first.address, first.family);
  });
}
