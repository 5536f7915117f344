// errno values (Linux, asm-generic) and errors that say what went wrong in words a user can act on.
import { errno } from "./libc.ts";

export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const EMSGSIZE = 90;
export const EPROTONOSUPPORT = 93;
export const EOPNOTSUPP = 95;
export const EAFNOSUPPORT = 97;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENETDOWN = 100;
export const ENETUNREACH = 101;
export const ECONNREFUSED = 111;
export const EHOSTUNREACH = 113;

const NAMES: Record<number, string> = {
  [EPERM]: "EPERM", [ENOENT]: "ENOENT", [EINTR]: "EINTR", [EBADF]: "EBADF", [EAGAIN]: "EAGAIN",
  [ENOMEM]: "ENOMEM", [EACCES]: "EACCES", [EBUSY]: "EBUSY", [EEXIST]: "EEXIST", [ENODEV]: "ENODEV",
  [EINVAL]: "EINVAL", [EMSGSIZE]: "EMSGSIZE", [EPROTONOSUPPORT]: "EPROTONOSUPPORT",
  [EAFNOSUPPORT]: "EAFNOSUPPORT", [EADDRINUSE]: "EADDRINUSE", [EADDRNOTAVAIL]: "EADDRNOTAVAIL",
  [ENETDOWN]: "ENETDOWN", [ENETUNREACH]: "ENETUNREACH", [ECONNREFUSED]: "ECONNREFUSED",
  [EHOSTUNREACH]: "EHOSTUNREACH", [EIO]: "EIO", [EOPNOTSUPP]: "EOPNOTSUPP",
};

const DESCRIPTIONS: Record<number, string> = {
  [EPERM]: "operation not permitted",
  [ENOENT]: "no such file or directory",
  [EACCES]: "permission denied",
  [EBUSY]: "device or resource busy",
  [EEXIST]: "already exists",
  [ENODEV]: "no such device",
  [EINVAL]: "invalid argument",
  [EMSGSIZE]: "message too long",
  [EAFNOSUPPORT]: "address family not supported",
  [EADDRINUSE]: "address already in use",
  [EADDRNOTAVAIL]: "address not available",
  [ENETUNREACH]: "network unreachable",
  [ECONNREFUSED]: "connection refused",
  [EHOSTUNREACH]: "host unreachable",
};

export function errnoName(code: number): string {
  return NAMES[code] ?? `errno ${code}`;
}

/** A failed system call: `syscall` names the operation, `hint` says what the user can do. */
export class SysError extends Error {
  constructor(
    readonly syscall: string,
    readonly errno: number,
    hint?: string,
  ) {
    const what = DESCRIPTIONS[errno] ?? "failed";
    super(`${syscall}: ${what} (${errnoName(errno)})${hint ? `: ${hint}` : ""}`);
    this.name = "SysError";
  }
}

/** Throws a SysError for the current errno; `hints` maps errno values to advice. */
export function fail(syscall: string, hints?: Partial<Record<number, string>>): never {
  const code = errno();
  throw new SysError(syscall, code, hints?.[code]);
}

export const NEEDS_NET_ADMIN =
  "needs CAP_NET_ADMIN: run as root, or grant it (setcap cap_net_admin+ep wontun, or --cap-add NET_ADMIN in a container)";
