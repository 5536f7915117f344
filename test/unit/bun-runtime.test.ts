// What a daemon adds to its environment before it starts again (src/daemon/bun-runtime.ts).
import { afterEach, describe, expect, test } from "bun:test";
import { GC_TIMER_ENV, KEEP_GC_TIMER_ENV, daemonRuntimeEnvironment, restartWithDaemonRuntime } from "../../src/daemon/bun-runtime.ts";

const saved = { gc: process.env[GC_TIMER_ENV], keep: process.env[KEEP_GC_TIMER_ENV] };
const restore = (name: string, value: string | undefined) => {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
};

describe("daemonRuntimeEnvironment", () => {
  afterEach(() => {
    restore(GC_TIMER_ENV, saved.gc);
    restore(KEEP_GC_TIMER_ENV, saved.keep);
  });

  test("turns Bun's GC timer off", () => {
    delete process.env[GC_TIMER_ENV];
    delete process.env[KEEP_GC_TIMER_ENV];
    expect(daemonRuntimeEnvironment()).toEqual({ BUN_GC_TIMER_DISABLE: "1" });
  });

  test("adds nothing once the setting is there (the restarted daemon does not restart again)", () => {
    process.env[GC_TIMER_ENV] = "1";
    expect(daemonRuntimeEnvironment()).toEqual({});
    expect(restartWithDaemonRuntime()).toBeNull();
  });

  test("WONTUN_BUN_GC_TIMER=on keeps Bun's timer: nothing added, no restart", () => {
    delete process.env[GC_TIMER_ENV];
    process.env[KEEP_GC_TIMER_ENV] = "on";
    expect(daemonRuntimeEnvironment()).toEqual({});
    expect(restartWithDaemonRuntime()).toBeNull();
  });
});
