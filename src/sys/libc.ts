// Every libc function wontun calls, declared once. Everything else in src/sys wraps these.
//
// Conventions (bun:ffi's pitfalls, measured here): ssize_t returns are declared i32 (exact on
// x86-64 and aarch64 for the sizes we move), size_t arguments are u64 (passed as number), and
// pointers are plain numbers obtained once from ptr() on long-lived buffers.
import { dlopen, FFIType, read } from "bun:ffi";

const { i32, u32, u64, ptr, cstring } = FFIType;

export const libc = dlopen("libc.so.6", {
  open: { args: [cstring, i32], returns: i32 },
  close: { args: [i32], returns: i32 },
  read: { args: [i32, ptr, u64], returns: i32 },
  write: { args: [i32, ptr, u64], returns: i32 },
  writev: { args: [i32, ptr, i32], returns: i32 },
  ioctl: { args: [i32, u64, ptr], returns: i32 },
  fcntl: { args: [i32, i32, i32], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, ptr, u32], returns: i32 },
  connect: { args: [i32, ptr, u32], returns: i32 },
  listen: { args: [i32, i32], returns: i32 },
  accept4: { args: [i32, ptr, ptr, i32], returns: i32 },
  setsockopt: { args: [i32, i32, i32, ptr, u32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, ptr, ptr], returns: i32 },
  getsockname: { args: [i32, ptr, ptr], returns: i32 },
  sendto: { args: [i32, ptr, u64, i32, ptr, u32], returns: i32 },
  recvfrom: { args: [i32, ptr, u64, i32, ptr, ptr], returns: i32 },
  recvmmsg: { args: [i32, ptr, u32, i32, ptr], returns: i32 },
  sendmmsg: { args: [i32, ptr, u32, i32], returns: i32 },
  epoll_create1: { args: [i32], returns: i32 },
  epoll_ctl: { args: [i32, i32, i32, ptr], returns: i32 },
  epoll_wait: { args: [i32, ptr, i32, i32], returns: i32 },
  if_nametoindex: { args: [cstring], returns: u32 },
  if_indextoname: { args: [u32, ptr], returns: ptr },
  eventfd: { args: [u32, i32], returns: i32 },
  execve: { args: [ptr, ptr, ptr], returns: i32 },
  // syscall(2) for what glibc does not wrap (bpf): number and three arguments.
  syscall: { args: [FFIType.i64, FFIType.i64, ptr, u32], returns: i32 },
  clock_gettime: { args: [i32, ptr], returns: i32 },
  __errno_location: { args: [], returns: ptr },
}).symbols;

// errno is thread-local: each thread (a Worker loads its own copy of this module) looks up its own.
const errnoAddress = libc.__errno_location()!;

/** The calling thread's errno, valid right after a libc call returned -1. */
export function errno(): number {
  return read.i32(errnoAddress, 0);
}

/** A NUL-terminated copy of `s` for cstring arguments (not for hot paths). */
export function cstr(s: string): Buffer {
  return Buffer.from(s + "\0", "utf8");
}
