// Writes N simulated mesh members into etcd (run inside the etcd namespace by bench/mesh.ts):
// each a valid record and its address key, 32 members (64 keys) per transaction. Prints one JSON
// line: {"n","startMs","endMs"} (wall clock).
import { Etcd3 } from "etcd3";
import { generatePrivateKey, publicKeyOf } from "../src/crypto/keys.ts";
import { addressKey, encodeRecord, nodeKey, ownRecord } from "../src/mesh/record.ts";

const [store, prefix, countText, firstText] = process.argv.slice(2);
const n = Number(countText);
const first = Number(firstText ?? "0");
const client = new Etcd3({ hosts: store });
const members = Array.from({ length: n }, (_, i) => {
  const pub = publicKeyOf(generatePrivateKey());
  const host = first + i + 10;
  const address = new Uint8Array([10, 70, 100 + (host >> 8), host & 0xff]);
  return { pub, address, record: encodeRecord(ownRecord(pub, `sim${first + i}`, address, [{ host: "192.0.2.200", port: 20000 + ((first + i) % 40000) }], [], "bench")) };
});
const startMs = Date.now();
for (let i = 0; i < members.length; i += 32) {
  const ops = members.slice(i, i + 32).flatMap((m) => [
    client.put(addressKey(prefix, m.address)).value(Buffer.from(m.pub).toString("base64")),
    client.put(nodeKey(prefix, m.pub)).value(m.record),
  ]);
  await client.if(addressKey(prefix, members[i].address), "Version", ">", -1).then(...ops).commit();
}
const endMs = Date.now();
console.log(JSON.stringify({ n, startMs, endMs }));
client.close();
