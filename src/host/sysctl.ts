// Kernel settings under /proc/sys/net, which belong to the calling process's network namespace.
import { writeFileSync } from "node:fs";

export function writeSysctl(key: string, value: string): void {
  writeFileSync(`/proc/sys/${key.replaceAll(".", "/")}`, value);
}

/**
 * ICMP redirects off for the interface and for `all`, as kernel WireGuard does when its interface
 * opens: a hub that sends a client's packet back out of the same tunnel would otherwise answer
 * with redirects, which mean nothing on a tunnel and eat the ICMP rate limit. Never undone (the
 * kernel module does not undo it either).
 */
export function disableRedirects(ifname: string, warn: (message: string) => void): void {
  try {
    writeSysctl(`net/ipv4/conf/${ifname}/send_redirects`, "0");
    writeSysctl("net/ipv4/conf/all/send_redirects", "0");
  } catch (err) {
    // A container's /proc/sys is read-only: the tunnel works without this, so say it and go on.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EROFS" && code !== "EACCES" && code !== "EPERM") throw err;
    warn(`cannot turn ICMP redirects off (${code}: /proc/sys is read-only here, as in a container); a hub may send redirects`);
  }
}

/**
 * net.ipv4.conf.all.src_valid_mark=1, as wg-quick sets it for an IPv4 full tunnel: reverse-path
 * filtering then takes the fwmark into account, so replies to the marked tunnel packets pass.
 * Never undone (wg-quick leaves it too).
 */
export function enableSrcValidMark(): void {
  writeSysctl("net/ipv4/conf/all/src_valid_mark", "1");
}
