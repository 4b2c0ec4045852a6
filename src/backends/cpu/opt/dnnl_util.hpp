// What oneDNN kernels (conv_dnnl.cpp; built only where CMake found oneDNN) share: the CPU engine, running oneDNN
// on the calling thread only, reordering a memory into another format, and the switch that turns them off.
#pragma once

#include <cstdlib>
#include <cstring>

#include <oneapi/dnnl/dnnl.hpp>

extern "C" {
int omp_get_max_threads(void);
void omp_set_num_threads(int);
}

namespace orchard::cpu::opt::dnnl_util {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// True when ORCHARD_ONEDNN=0: the oneDNN variants decline every node (the own kernels run; for comparisons).
inline bool disabled_by_env() {
  const char* env = std::getenv("ORCHARD_ONEDNN");
  return env != nullptr && std::strcmp(env, "0") == 0;
}

// Never destroyed: pool threads keep a stream of it (thread_local) until they exit, which may be after static
// destruction.
inline const dnnl::engine& cpu_engine() {
  static const dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

// Keeps oneDNN on the calling thread: its OpenMP parallelism is set to 1 for the scope and restored after (the
// setting is per thread, and an application's own OpenMP code on this thread keeps its own). Orchard's pool
// splits the work; oneDNN never starts threads of its own.
class SingleThreaded {
 public:
  SingleThreaded() : saved_(omp_get_max_threads()) {
    if (saved_ != 1) omp_set_num_threads(1);
  }
  ~SingleThreaded() {
    if (saved_ != 1) omp_set_num_threads(saved_);
  }
  SingleThreaded(const SingleThreaded&) = delete;
  SingleThreaded& operator=(const SingleThreaded&) = delete;

 private:
  int saved_;
};

// Returns a copy of `from` in the format `want` (a weight packed once at create).
inline dnnl::memory reordered(const dnnl::memory& from, const dnnl::memory::desc& want) {
  dnnl::memory to(want, cpu_engine());
  dnnl::stream s(cpu_engine());
  dnnl::reorder(from, to).execute(s, const_cast<dnnl::memory&>(from), to);
  s.wait();
  return to;
}

}  // namespace orchard::cpu::opt::dnnl_util
