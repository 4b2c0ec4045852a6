// orchard serve in builds without the server (ORCHARD_BUILD_SERVER=OFF, e.g. the aarch64 cross build).
#include <cstdio>

#include "cli.hpp"

namespace orchard::cli {

int cmd_serve(int, char**) {
  std::fputs("orchard serve: this build has no server (configure with -DORCHARD_BUILD_SERVER=ON)\n", stderr);
  return kExitFailure;
}

}  // namespace orchard::cli
