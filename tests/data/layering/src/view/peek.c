/* A view file that includes the engine's private header. */
#include "store/store.h"
#include "engine/engine_internal.h"
