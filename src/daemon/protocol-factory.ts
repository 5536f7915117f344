// The protocol a tunnel runs: WireGuard when its config has (or will get) keys, else the plaintext
// wontun protocol. Peers are not added here: the operations layer adds them under their ids.
import { selectAeadBackend } from "../crypto/aead.ts";
import { BySizeBackend } from "../crypto/aead-by-size.ts";
import { encodeKey } from "../crypto/keys.ts";
import type { Config } from "../config/model.ts";
import type { Logger } from "../log.ts";
import { WireGuardProtocol } from "../protocol/wireguard/protocol.ts";
import { WontunProtocol } from "../protocol/wontun/protocol.ts";
import type { PeerId } from "../protocol/tunnel.ts";

/** `labelOf` names a peer in debug lines (its name, or a short public key). */
export function createProtocol(config: Config, log: Logger, labelOf: (peer: PeerId) => string): WireGuardProtocol | WontunProtocol {
  if (config.mode === "wireguard") {
    const aead = selectAeadBackend();
    const wg = new WireGuardProtocol({ privateKey: config.interface.privateKey, aead, mtu: config.interface.mtu });
    wg.onEvent = (peer, message) => log.debug(`peer ${labelOf(peer)}: ${message}`);
    let via: string = aead.name;
    if (aead instanceof BySizeBackend) {
      via = `libsodium, and ${aead.name.split("+")[1]} from the first long packet on`;
      aead.onLongUnavailable = (why) => log.warn(`${aead.name.split("+")[1]} unavailable (${why}); long packets stay on libsodium`);
    }
    const key = wg.publicKey ? `public key ${encodeKey(wg.publicKey)}` : "no private key yet";
    log.info(`WireGuard mode, ${key}; ChaCha20-Poly1305 via ${via}`);
    return wg;
  }
  log.warn("wontun protocol: traffic is NOT encrypted or authenticated; use it only on networks you trust");
  const wontun = new WontunProtocol(config.interface.name);
  wontun.onTransition = (peer, from, to) => log.debug(`peer ${labelOf(peer)}: ${from} -> ${to}`);
  return wontun;
}
