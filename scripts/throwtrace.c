// LD_PRELOAD shim: for every C++ exception thrown, prints its type, the executable's load base and the
// return addresses of the throw, then throws as usual. For the GPU machine, which has no gdb: run a test there with
//   gcc -O1 -shared -fPIC -o throwtrace.so scripts/throwtrace.c -ldl     (built here, carried along)
//   LD_PRELOAD=$PWD/throwtrace.so ./orchard_tests --gtest_filter=...      (there)
// and resolve the addresses here with addr2line -f -C -e build/release/tests/orchard_tests <address - base>, the
// binary unstripped (strip keeps the addresses).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
typedef void (*throw_fn)(void*, void*, void (*)(void*));
static int cb(struct dl_phdr_info* i, size_t s, void* d) {
  (void)s; (void)d;
  fprintf(stderr, "THROWTRACE base %lx %s\n", (unsigned long)i->dlpi_addr, i->dlpi_name[0] ? i->dlpi_name : "<main>");
  return 1;  // first object only: the executable
}
void __cxa_throw(void* obj, void* tinfo, void (*dest)(void*)) {
  static throw_fn real = 0;
  if (!real) real = (throw_fn)dlsym(RTLD_NEXT, "__cxa_throw");
  const char* name = ((const char**)tinfo)[1];
  fprintf(stderr, "THROWTRACE throw %s\n", name);
  void* bt[48];
  int n = backtrace(bt, 48);
  dl_iterate_phdr(cb, 0);
  for (int k = 0; k < n; ++k) fprintf(stderr, "THROWTRACE at %p\n", bt[k]);
  backtrace_symbols_fd(bt, n, 2);
  real(obj, tinfo, dest);
  __builtin_unreachable();
}
