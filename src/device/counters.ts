/** Device-wide drop counters (protocol-level ones live in the protocol). */
export class DeviceCounters {
  noRoute = 0;
  sourceRejected = 0;
  notIp = 0;
  tunWriteErrors = 0;
  udpErrors = 0;
  /** Super-packets from the TUN that could not be segmented (malformed, or too many segments). */
  offloadErrors = 0;

  /** Every drop counted so far (to tell whether anything changed). */
  total(): number {
    return this.noRoute + this.sourceRejected + this.notIp + this.tunWriteErrors + this.udpErrors + this.offloadErrors;
  }
}
