// The Orchard public API in one include.
#pragma once

#include "orchard/dtype.hpp"
#include "orchard/session.hpp"
#include "orchard/status.hpp"
#include "orchard/tensor.hpp"
