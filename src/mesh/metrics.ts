// wontun_mesh_* gauges for the Prometheus endpoint (added with MetricsServer.addSource).
import type { MetricsWriter } from "../metrics/text-format.ts";
import type { MeshStatus } from "../control/model.ts";

export function writeMeshMetrics(out: MetricsWriter, iface: string, mesh: MeshStatus): void {
  out.gauge("wontun_mesh_store_up", "1 while the etcd store answers, else 0 (the tunnels keep their peers either way).")
    .sample({ interface: iface }, mesh.storeState === "connected" ? 1 : 0);
  out.gauge("wontun_mesh_revision", "The etcd revision of the mesh's key space last seen.").sample({ interface: iface }, mesh.revision);
  out.gauge("wontun_mesh_published", "1 if this node's record is in the store under a live lease.").sample({ interface: iface }, mesh.published ? 1 : 0);
  const counts = new Map<string, number>([["peer", 0], ["not_peered", 0], ["ignored", 0]]);
  for (const m of mesh.members) {
    const state = m.state === "peer" ? "peer" : m.state.startsWith("ignored") ? "ignored" : "not_peered";
    counts.set(state, (counts.get(state) ?? 0) + 1);
  }
  const members = out.gauge("wontun_mesh_members", "Records under the mesh prefix other than this node's, by state (peer, not_peered, ignored).");
  for (const [state, n] of counts) members.sample({ interface: iface, state }, n);
}
