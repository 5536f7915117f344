// Start-up from a config file: the config's peers become device peers with the ids the caller
// chose (and gave the protocol). Hostname endpoints are resolved here, once, as the seed does.
import { peerLabel, type Config } from "../config/model.ts";
import type { PeerId } from "../protocol/tunnel.ts";
import type { Logger } from "../log.ts";
import type { Device } from "./device.ts";
import { resolveEndpoint } from "./resolve-endpoint.ts";

/** Adds config.peers[i] as peer ids[i], with its AllowedIPs and (resolved) endpoint. */
export async function addConfigPeers(device: Device, config: Config, ids: readonly PeerId[], log: Logger): Promise<void> {
  for (let i = 0; i < config.peers.length; i++) {
    const peer = config.peers[i];
    const label = peerLabel(peer);
    device.addPeer(ids[i], label);
    device.setAllowedIps(ids[i], peer.allowedIps);
  }
  for (let i = 0; i < config.peers.length; i++) {
    const ep = config.peers[i].endpoint;
    if (!ep) continue;
    const endpoint = await resolveEndpoint(ep.host, ep.port);
    if (!endpoint) {
      log.warn(`peer ${peerLabel(config.peers[i])}: cannot resolve endpoint ${ep.host}; waiting for it to contact us`);
      continue;
    }
    device.setPeerEndpoint(ids[i], endpoint, performance.now());
  }
}
